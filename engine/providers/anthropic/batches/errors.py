"""Errors of the batch path, and batch item errors turned into the SDK's own exceptions.

::

    Exception
     ├── BatchItemError        one request could not be answered through a batch
     │                         (the batch was lost, or the service closed before it ended)
     └── NotHandedOver         the engine failed before the request was handed over
          │                    (journal, capabilities, serialization): nothing was sent,
          │                    so the caller sends it direct, unchanged
          └── NotBatchable     (also a ValueError) a request the Batches API cannot carry

An item that comes back ``errored`` carries the API's error type. A permanent one
(the request itself is wrong: 400, 401, 402, 403, 404, 413) is raised at once as
the exception a direct ``messages.create`` raises for it, built by the SDK client
from an equivalent HTTP response; a transient one (429, 500, 504, 529) is retried.
"""

from __future__ import annotations

import ast
import importlib
import json
from typing import Any

import anthropic

__all__ = [
    "PERMANENT_ERRORS",
    "RETRYABLE_ERRORS",
    "BatchItemError",
    "NotBatchable",
    "NotHandedOver",
    "recorded_sdk_error",
    "sdk_error",
]

#: API error types and the status a direct call answers them with.
PERMANENT_ERRORS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
}
RETRYABLE_ERRORS: dict[str, int] = {
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class NotHandedOver(Exception):
    """Nothing of this request was sent: the engine failed before handing it over (fail open)."""


class NotBatchable(NotHandedOver, ValueError):
    """A request the Batches API cannot carry as the SDK would send it (streaming,
    per-request query parameters): the caller sends it direct."""


class BatchItemError(Exception):
    """A batch item that ended without an answer, named so the caller can find it.

    ``failure`` is how it ended: ``errored``, ``expired``, ``canceled`` or ``missing``
    (absent from the results) once retries are spent with ``onFailure: error``;
    ``submission`` (the batch was refused); ``deadline`` (the plan's deadline passed);
    ``uncollected`` (the batch could not be polled or read: it stays in the journal and
    a resume collects it; never sent again, as it may be paid for); ``archived`` (the
    API no longer has its results); ``closed`` (the service closed before the item
    ended: the journal keeps it); ``internal`` (the engine failed while it held the item).
    """

    def __init__(
        self,
        *,
        custom_id: str,
        request_hash: str,
        failure: str,
        attempts: int,
        detail: str = "",
        call_site: str | None = None,
    ) -> None:
        self.custom_id = custom_id
        self.request_hash = request_hash
        self.failure = failure
        self.attempts = attempts
        self.detail = detail
        self.call_site = call_site
        where = f" at call site {call_site!r}" if call_site else ""
        tail = f": {detail}" if detail else ""
        super().__init__(f"batch request {custom_id}{where} {failure} after {attempts} attempt(s){tail}")


def sdk_error(client: anthropic.AsyncAnthropic, error_type: str, message: str) -> anthropic.APIStatusError:
    """The exception ``client.messages.create`` raises when the API answers ``error_type``.

    Built the way the SDK builds it (its own status-to-class mapping, from a response
    with the same status and body), so callers catch the same class and see the same
    ``status_code``, ``body`` and message.
    """
    status = PERMANENT_ERRORS.get(error_type) or RETRYABLE_ERRORS.get(error_type) or 500
    http = _httpx_of(client)
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = http.Response(
        status,
        content=json.dumps(body).encode("utf-8"),
        headers={"content-type": "application/json"},
        request=http.Request("POST", url),
    )
    error: anthropic.APIStatusError = client._make_status_error_from_response(response)
    return error


def recorded_sdk_error(
    client: anthropic.AsyncAnthropic, recorded: str | None
) -> anthropic.APIStatusError | None:
    """The SDK exception a journal row's error stands for, when it was recorded from one.

    A worker that rejects an item records ``str(error)`` of the SDK's exception
    (``Error code: 400 - {...}``); a caller joined to that row on another worker or
    replica gets the same class, status and body back, not a generic batch error.
    """
    head, sep, body = (recorded or "").partition(" - ")
    if not sep or not head.startswith("Error code: "):
        return None
    try:
        inner = ast.literal_eval(body)["error"]
        return sdk_error(client, str(inner["type"]), str(inner["message"]))
    except (ValueError, SyntaxError, KeyError, TypeError):
        return None


def _httpx_of(client: anthropic.AsyncAnthropic) -> Any:
    """The HTTP library module the SDK client is built on (``httpx``, or its successor)."""
    return importlib.import_module(type(client.base_url).__module__.split(".")[0])
