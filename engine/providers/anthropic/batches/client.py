"""The Message Batches API on an ``AsyncAnthropic`` client: submit, wait, stream, cancel.

- ``split_requests`` keeps each batch under the API's limits (request count and
  body size, both from ``engine/data/anthropic.yaml``).
- ``wait`` polls with a growing interval, honouring ``retry-after`` when the API
  asks to slow down, and cancels a batch that outlives its deadline.
- ``results`` streams the JSONL results line by line through the SDK (the file is
  never held in memory); results come in any order, so callers match on
  ``custom_id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import anthropic
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from engine.providers.anthropic.capabilities import Capabilities, capabilities

__all__ = ["BatchClient", "ambiguous", "connection_lost", "retry_after_s", "split_requests", "transient"]

logger = logging.getLogger("llm_policy.batches")

MAX_POLL_FAILURES = 30  # consecutive transient errors (with growing pauses) before giving up
_ENVELOPE_BYTES = 64  # {"custom_id": ..., "params": ...} around each request, and the commas


def split_requests(
    requests: Iterable[dict[str, Any]], *, max_requests: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of ``requests``, each within ``max_requests`` and ``max_bytes`` of JSON.

    A single request larger than ``max_bytes`` still gets its own chunk: the API
    will refuse it with 413 and the service falls back for that one request.
    """
    chunk: list[dict[str, Any]] = []
    size = 0
    for request in requests:
        weight = len(json.dumps(request, separators=(",", ":")).encode("utf-8")) + _ENVELOPE_BYTES
        if chunk and (len(chunk) >= max_requests or size + weight > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(request)
        size += weight
    if chunk:
        yield chunk


def retry_after_s(exc: BaseException) -> float | None:
    """The delay an API error asks for (``retry-after-ms``, then ``retry-after``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 < seconds <= 600:
            return seconds
    return None


_HTTP_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "h11", "anyio"})


def connection_lost(exc: BaseException) -> bool:
    """The connection failed: before the answer (the SDK's ``APIConnectionError``) or while its
    body was read (the HTTP library's own error, which the SDK lets through)."""
    if isinstance(exc, anthropic.APIConnectionError | ConnectionError | TimeoutError):
        return True
    return type(exc).__module__.split(".")[0] in _HTTP_LIBRARIES


def ambiguous(exc: BaseException) -> bool:
    """A failed create that may still have made the batch: the server may have taken it."""
    if connection_lost(exc):  # dropped after sending, or a timeout
        return True
    return isinstance(exc, anthropic.APIStatusError) and (
        exc.status_code in (408, 409) or exc.status_code >= 500
    )


def transient(exc: BaseException) -> bool:
    """Worth asking again: a lost connection, 408, 409, 429 or 5xx."""
    if connection_lost(exc):
        return True
    return isinstance(exc, anthropic.APIStatusError) and (
        exc.status_code in (408, 409, 429) or exc.status_code >= 500
    )


class BatchClient:
    """Batch operations on one SDK client (its key, endpoint and headers).

    ``headers`` are the requests' own extra headers (an ``anthropic-beta``): every call
    about their batch carries them. ``create`` is never retried by the SDK: a create
    that fails ambiguously (5xx, connection dropped) may have made a batch, and only
    the service can tell (see ``_reconcile``) before anything is sent again.
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        caps: Capabilities | None = None,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client.with_options(default_headers=headers) if headers else client
        self._once = self.client.with_options(max_retries=0)
        caps = caps or capabilities()
        self.max_requests = int(caps.limits["batch_max_requests"])
        self.max_bytes = int(caps.limits["batch_max_bytes"])
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval

    def split(self, requests: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        return split_requests(requests, max_requests=self.max_requests, max_bytes=self.max_bytes)

    async def create(self, requests: list[dict[str, Any]]) -> MessageBatch:
        """Submit one chunk (``[{"custom_id", "params"}]``); API errors propagate."""
        return await self._once.messages.batches.create(requests=requests)  # type: ignore[arg-type]

    async def wait(self, batch_id: str, *, deadline_s: float | None = None) -> MessageBatch:
        """Poll until the batch has ended; cancel it once past ``deadline_s`` (then keep polling).

        Transient errors (429, 5xx, connection) are waited out, honouring ``retry-after``;
        after ``MAX_POLL_FAILURES`` in a row the last one is raised.
        """
        delay = self.poll_interval
        started = time.monotonic()
        canceled = False
        failures = 0
        while True:
            try:
                batch = await self.client.messages.batches.retrieve(batch_id)
                failures = 0
            except Exception as exc:
                failures += 1
                if not transient(exc) or failures >= MAX_POLL_FAILURES:
                    raise
                pause = retry_after_s(exc) or delay
                logger.info("polling batch %s: %s; retrying in %.1fs", batch_id, exc, pause)
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.max_poll_interval)
                continue
            if batch.processing_status == "ended":
                return batch
            if deadline_s is not None and not canceled and time.monotonic() - started > deadline_s:
                canceled = await self._cancel_quietly(batch_id)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.max_poll_interval)

    async def _cancel_quietly(self, batch_id: str) -> bool:
        try:
            await self.cancel(batch_id)
        except anthropic.APIError as exc:
            logger.warning("canceling batch %s past its deadline failed: %s", batch_id, exc)
            return False
        logger.warning("batch %s passed its deadline: canceled (its unfinished items are retried)", batch_id)
        return True

    async def results(self, batch_id: str) -> AsyncIterator[MessageBatchIndividualResponse]:
        """Result lines of an ended batch, streamed (in any order)."""
        decoder = await self.client.messages.batches.results(batch_id)
        try:
            async for line in decoder:
                yield line
        finally:
            await decoder.close()

    async def cancel(self, batch_id: str) -> MessageBatch:
        return await self.client.messages.batches.cancel(batch_id)
