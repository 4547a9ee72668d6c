"""HTTP plumbing shared by every emulator route (the batch routes included).

- :class:`RequestIdMiddleware` gives each request a ``req_...`` id, sets the
  ``request-id`` header on every response (404s and crashes included) and puts
  the id in ``request.state.request_id`` so error bodies carry the same one.
- :func:`api_key` reads ``x-api-key`` (or ``Authorization: Bearer``) or answers 401.
- :func:`read_json` reads a body with a size limit (413 past it) and parses it (400).
- :func:`error_response` renders an :class:`ApiError` as the API does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.emulator.errors import ApiError, new_request_id

__all__ = ["RequestIdMiddleware", "api_key", "error_response", "read_json", "request_id"]

logger = logging.getLogger("llm_policy.emulator")


def request_id(request: Request) -> str:
    """The id the middleware gave this request (a fresh one outside the middleware)."""
    rid = request.scope.setdefault("state", {}).setdefault("request_id", new_request_id())
    return str(rid)


def error_response(err: ApiError, request: Request) -> JSONResponse:
    return JSONResponse(err.body(request_id(request)), status_code=err.status, headers=err.headers)


def api_key(request: Request) -> str:
    """The caller's API key; 401 ``authentication_error`` when there is none."""
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if not key:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    return key


def _too_large(limit: int) -> ApiError:
    mb = limit // (1024 * 1024)
    return ApiError(
        413,
        "request_too_large",
        f"Request exceeds the maximum allowed number of bytes. The maximum request size is {mb} MB.",
    )


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body; 413 when over ``limit`` bytes, 400 when not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise ApiError(400, "invalid_request_error", "The request body is empty: expected a JSON object")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_request_error", f"The request body is not valid JSON: {exc}") from exc
    except RecursionError:  # nesting deeper than any request needs
        raise ApiError(400, "invalid_request_error", "The request body is nested too deeply") from None


def _no_constant(name: str) -> Any:
    """``NaN`` / ``Infinity`` are not JSON: refuse them as the API does."""
    raise ValueError(f"{name} is not a valid JSON value")


class RequestIdMiddleware:
    """Pure ASGI (cheap): adds ``request-id`` to every response, answers crashes as 500 ``api_error``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"request-id", rid.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise
            logger.exception("emulator crashed on %s %s", scope.get("method"), scope.get("path"))
            err = ApiError(500, "api_error", "Internal server error")
            response: Response = JSONResponse(err.body(rid), status_code=500)
            await response(scope, receive, send_with_id)
