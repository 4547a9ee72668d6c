"""The Message Batches endpoints of the emulator.

``routes(state)`` is mounted by :func:`engine.emulator.app.build_app`:

- ``POST   /v1/messages/batches``                create (checked by :mod:`batches_intake`)
- ``GET    /v1/messages/batches``                list, newest first (``after_id``, ``before_id``, ``limit``)
- ``GET    /v1/messages/batches/{id}``           retrieve
- ``POST   /v1/messages/batches/{id}/cancel``    cancel (``canceling``, then ``ended``)
- ``DELETE /v1/messages/batches/{id}``           delete an ended batch
- ``GET    /v1/messages/batches/{id}/results``   JSONL, streamed from disk

Records and lifecycle live in :mod:`batches_store`, processing in
:mod:`batches_worker`. ``results_url`` is built from the base URL of the request
that reads the batch, so it points back at this server however it was reached
(host, port and any mount prefix), which is what the SDK's ``results()`` needs: it
GETs that URL verbatim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engine.emulator.batches_intake import parse_requests, receive_body
from engine.emulator.batches_store import Batch, BatchStore, batch_store
from engine.emulator.batches_worker import run_batch
from engine.emulator.errors import ApiError, invalid_request, not_found
from engine.emulator.faults import (
    CutResponse,
    DroppedResponse,
    draw_batch_fault,
    draw_create_lost,
    draw_results_cut,
)
from engine.emulator.state import EmulatorState
from engine.emulator.web import api_key

__all__ = ["batch_store", "routes"]

_log = logging.getLogger(__name__)
_MAX_PAGE = 1000
_DEFAULT_PAGE = 20


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The six batch routes, bound to ``state``'s :class:`BatchStore`."""
    store = batch_store(state)
    handlers = _Handlers(store)
    prefix = "/v1/messages/batches"
    return [
        Route(prefix, handlers.create, methods=["POST"]),
        Route(prefix, handlers.list_batches, methods=["GET"]),
        Route(prefix + "/{batch_id}", handlers.retrieve, methods=["GET"]),
        Route(prefix + "/{batch_id}", handlers.delete, methods=["DELETE"]),
        Route(prefix + "/{batch_id}/cancel", handlers.cancel, methods=["POST"]),
        Route(prefix + "/{batch_id}/results", handlers.results, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, store: BatchStore) -> None:
        self.store = store

    def _fault(self) -> Response | None:
        """An injected batch API fault (``batch_fault_rate``): raised, or a dropped connection."""
        fault = draw_batch_fault(self.store.state)
        if isinstance(fault, ApiError):
            raise fault
        return DroppedResponse() if fault is not None else None

    async def create(self, request: Request) -> Response:
        key = api_key(request)
        body = await receive_body(request, self.store.limits.max_bytes)
        faulted = self._fault()
        if faulted is not None:
            body.close()
            return faulted
        try:
            intake = await anyio.to_thread.run_sync(
                parse_requests, body, self.store.spool_dir, self.store.limits
            )
        finally:
            body.close()
        batch = self.store.add(key, intake, self.store.state.config.batch_latency_s, time.monotonic())
        batch.task = asyncio.create_task(run_batch(self.store, batch), name=f"batch {batch.id}")
        batch.task.add_done_callback(_report_crash)
        lost = draw_create_lost(self.store.state)  # made, but the client will not know it
        if isinstance(lost, ApiError):
            raise lost
        if lost is not None:
            return DroppedResponse()
        return self._answer(request, batch)

    async def retrieve(self, request: Request) -> Response:
        faulted = self._fault()
        if faulted is not None:
            return faulted
        return self._answer(request, self.store.get(api_key(request), _batch_id(request)))

    async def cancel(self, request: Request) -> Response:
        return self._answer(request, self.store.cancel(api_key(request), _batch_id(request)))

    async def delete(self, request: Request) -> Response:
        batch_id = _batch_id(request)
        self.store.delete(api_key(request), batch_id)
        return JSONResponse({"id": batch_id, "type": "message_batch_deleted"})

    async def list_batches(self, request: Request) -> Response:
        key = api_key(request)
        faulted = self._fault()
        if faulted is not None:
            return faulted
        after_id, before_id, limit = _page_params(request)
        page, has_more = self.store.page(key, after_id, before_id, limit)
        base = _base_url(request)
        with self.store.lock:
            data = [batch.to_json(base) for batch in page]
        return JSONResponse(
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def results(self, request: Request) -> Response:
        batch_id = _batch_id(request)
        faulted = self._fault()
        if faulted is not None:
            return faulted
        with self.store.lock:
            batch = self.store.get(api_key(request), batch_id)
            if batch.status != "ended":
                raise invalid_request(
                    f"Message Batch '{batch_id}' is still {batch.status}; "
                    "results are available once processing_status is 'ended'."
                )
            if batch.archived_at is not None:
                raise not_found(
                    f"The results of Message Batch '{batch_id}' were archived at "
                    f"{batch.to_json('')['archived_at']} and are no longer available."
                )
            chunks = batch.results.iter_chunks()
            cut = draw_results_cut(self.store.state, batch.total)
        if cut is not None:
            return CutResponse(chunks, os.path.getsize(batch.results.path), cut)
        return StreamingResponse(chunks, media_type="application/binary")

    def _answer(self, request: Request, batch: Batch) -> Response:
        with self.store.lock:
            return JSONResponse(batch.to_json(_base_url(request)))


def _base_url(request: Request) -> str:
    """Scheme, host and mount prefix the client used to reach this app.

    ``scope["root_path"]`` rather than ``request.base_url``: the latter drops the
    prefix of a ``Mount`` this app sits under, and ``results_url`` must lead back
    through it.
    """
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}"


def _batch_id(request: Request) -> str:
    return str(request.path_params["batch_id"])


def _page_params(request: Request) -> tuple[str | None, str | None, int]:
    """``after_id``, ``before_id`` and ``limit`` with the API's validation messages."""
    query = request.query_params
    after_id, before_id = query.get("after_id"), query.get("before_id")
    if after_id is not None and before_id is not None:
        raise invalid_request("after_id, before_id: give at most one of after_id and before_id")
    raw = query.get("limit", str(_DEFAULT_PAGE))
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request(
            f"limit: Input should be a valid integer, unable to parse string as an integer (got {raw!r})"
        ) from None
    if limit < 1:
        raise invalid_request("limit: Input should be greater than or equal to 1")
    if limit > _MAX_PAGE:
        raise invalid_request(f"limit: Input should be less than or equal to {_MAX_PAGE}")
    return after_id, before_id, limit


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("batch worker %s crashed", task.get_name(), exc_info=task.exception())
