"""The emulator's ASGI app: the Anthropic routes plus the ``/_emulator`` controls.

``build_app(state)`` wires routes to one :class:`EmulatorState`. The Message
Batches routes live in ``engine.emulator.batches`` and are mounted when that
module is present (it provides ``routes(state)``).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Iterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engine.emulator.control import control_routes
from engine.emulator.errors import ERROR_TYPES, ApiError
from engine.emulator.faults import DROP, DroppedResponse, draw_fault
from engine.emulator.sse import sse_events
from engine.emulator.state import EmulatorState
from engine.emulator.web import RequestIdMiddleware, api_key, error_response, read_json
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["build_app"]


async def _aiter(events: Iterator[bytes]) -> AsyncIterator[bytes]:
    """An async iterator: Starlette would hop to a thread per chunk for a sync one."""
    for event in events:
        yield event


def _messages_limit() -> int:
    return int(capabilities().limits["messages_max_bytes"])


def _message_routes(state: EmulatorState) -> list[BaseRoute]:
    async def create(request: Request) -> Response:
        key = api_key(request)
        body = await read_json(request, _messages_limit())
        fault = draw_fault(state)
        try:
            if isinstance(fault, ApiError):
                raise fault
            message = state.run_message(key, body)
        except ApiError as err:
            state.log_request("standard", body, None, api_key=key, status=err.status)
            raise
        if state.config.latency_s > 0:
            await asyncio.sleep(state.config.latency_s)
        if fault == DROP:
            return DroppedResponse()
        if isinstance(body, dict) and body.get("stream"):
            return StreamingResponse(_aiter(sse_events(message)), media_type="text/event-stream")
        return JSONResponse(message)

    async def count_tokens(request: Request) -> Response:
        api_key(request)
        body = await read_json(request, _messages_limit())
        return JSONResponse(state.count_tokens(body))

    return [
        Route("/v1/messages", create, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    ]


def _batch_routes(state: EmulatorState) -> list[BaseRoute]:
    try:
        module = importlib.import_module("engine.emulator.batches")
    except ModuleNotFoundError as exc:
        if exc.name != "engine.emulator.batches":
            raise
        return []
    routes: list[BaseRoute] = module.routes(state)
    return routes


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = ERROR_TYPES.get(exc.status_code, "invalid_request_error")
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    return error_response(ApiError(exc.status_code, kind, message, headers=dict(exc.headers or {})), request)


def build_app(state: EmulatorState) -> Starlette:
    """The ASGI app serving ``state``."""
    app = Starlette(
        routes=[*_message_routes(state), *_batch_routes(state), *control_routes(state)],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = state
    return app
