"""API errors with the bodies, types and status codes the real API documents.

Everything that refuses a request raises :class:`ApiError`; the HTTP layer turns it
into ``{"type": "error", "error": {...}, "request_id": ...}`` with the status and
any extra headers (``retry-after`` on a 429). The batch module reuses the same
bodies for errored result lines, so a failure looks alike on both paths.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = [
    "ERROR_TYPES",
    "ApiError",
    "invalid_request",
    "new_request_id",
    "not_found",
]

#: Documented status -> error type.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def new_request_id() -> str:
    """A fresh ``req_...`` id, as on every real response's ``request-id`` header."""
    return "req_" + secrets.token_hex(12)


class ApiError(Exception):
    """A refusal the API would answer with ``status`` and an error body of ``type``."""

    def __init__(
        self, status: int, type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {type}: {message}")
        self.status = status
        self.type = type
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def error(self) -> dict[str, str]:
        """The inner ``{"type", "message"}`` object."""
        return {"type": self.type, "message": self.message}

    def body(self, request_id: str) -> dict[str, Any]:
        """The whole error body, as the API sends it."""
        return {"type": "error", "error": self.error(), "request_id": request_id}


def invalid_request(message: str) -> ApiError:
    """A 400 ``invalid_request_error``: the API's answer to a malformed request."""
    return ApiError(400, "invalid_request_error", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found_error", message)
