"""Reading and checking a ``POST /v1/messages/batches`` body.

The body may be 256 MB. It is received into a spooled temporary file (counting
bytes as they arrive, so an oversized body is refused with 413 without being kept),
then parsed incrementally with ijson: one request at a time is checked and written,
compactly re-serialized, to the batch's item spool. At no point do the raw body and
a parsed copy of all of it sit in memory together.

What is checked here is what the real API refuses at creation: the envelope
(``requests`` a non-empty list of at most 100,000 ``{custom_id, params}`` objects),
the ``custom_id`` pattern and uniqueness, and ``stream`` inside ``params``. The
params themselves are validated like ``messages.create`` when each item is
processed, and a bad one ends ``errored`` with ``invalid_request_error``: that is
how the real API reports them (batch validation is asynchronous).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import ijson  # type: ignore[import-untyped]
from starlette.requests import Request

from engine.emulator.batches_spool import LineSpool, SpoolDir
from engine.emulator.errors import ApiError, invalid_request
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["BatchLimits", "Intake", "parse_requests", "receive_body"]

#: Bodies up to this size stay in memory while they are parsed.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_ITEM_KEYS = frozenset({"custom_id", "params"})


@dataclass
class BatchLimits:
    """The creation limits, from the API facts data file (tests may lower them)."""

    max_requests: int
    max_bytes: int
    custom_id_pattern: str

    @classmethod
    def from_data(cls) -> BatchLimits:
        limits = capabilities().limits
        return cls(
            max_requests=int(limits["batch_max_requests"]),
            max_bytes=int(limits["batch_max_bytes"]),
            custom_id_pattern=str(limits["custom_id_pattern"]),
        )


@dataclass
class Intake:
    """A checked batch: its params on disk, one line each, and its custom_ids in order."""

    items: LineSpool
    custom_ids: list[str]


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "request_too_large",
        "Request exceeds the maximum allowed number of bytes. The maximum request size for a "
        f"Message Batch is {limit} bytes ({limit / 2**20:g} MB).",
    )


async def receive_body(request: Request, max_bytes: int) -> IO[bytes]:
    """The request body in a (spooled) temporary file; 413 past ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    body = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - caller closes
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            body.close()
            raise too_large(max_bytes)
        body.write(chunk)
    body.seek(0)
    return body


def parse_requests(body: IO[bytes], directory: SpoolDir, limits: BatchLimits) -> Intake:
    """Check every request of ``body`` and spool its params; raise the first refusal.

    On a refusal the partly written spool is deleted, so a refused batch leaves
    nothing behind.
    """
    spool = LineSpool(directory, "items-")
    try:
        custom_ids = _spool_items(body, spool, limits)
    except BaseException:
        spool.close()
        raise
    spool.flush()
    return Intake(spool, custom_ids)


def _spool_items(body: IO[bytes], spool: LineSpool, limits: BatchLimits) -> list[str]:
    pattern = re.compile(limits.custom_id_pattern)
    custom_ids: list[str] = []
    seen: dict[str, int] = {}
    count = 0
    try:
        for index, item in enumerate(ijson.items(body, "requests.item", use_float=True)):
            count = index + 1
            if count > limits.max_requests:
                continue  # keep counting, so the refusal can say how many there were
            custom_id, params = _check_item(index, item, seen, pattern)
            custom_ids.append(custom_id)
            spool.append(json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode())
    except ijson.JSONError as exc:
        raise invalid_request(f"There was an error parsing the body as JSON: {exc}") from None
    if count == 0:
        body.seek(0)
        raise _Shape.diagnose(body)
    if count > limits.max_requests:
        raise invalid_request(
            f"requests: List should have at most {limits.max_requests} items after validation, not {count}"
        )
    return custom_ids


class _Shape:
    """Why a body yielded no request: not an object, no ``requests``, not a list, or empty.

    Only run when the fast pass found nothing, so a valid 100,000-request body is
    parsed once. (Unknown top-level keys next to a valid ``requests`` list are
    therefore not reported; on their own they are.)
    """

    @staticmethod
    def diagnose(body: IO[bytes]) -> ApiError:
        top: str | None = None
        keys: list[str] = []
        kind: str | None = None
        try:
            for prefix, event, value in ijson.parse(body):
                if top is None:
                    top = event
                elif prefix == "" and event == "map_key":
                    keys.append(value)
                elif prefix == "requests" and kind is None:
                    kind = event
        except ijson.JSONError as exc:
            return invalid_request(f"There was an error parsing the body as JSON: {exc}")
        if top is None:
            return invalid_request('body: Field required; send {"requests": [...]}')
        if top != "start_map":
            return invalid_request("body: Input should be a valid dictionary")
        extra = [key for key in keys if key != "requests"]
        if extra:
            return invalid_request(f"{extra[0]}: Extra inputs are not permitted")
        if "requests" not in keys:
            return invalid_request("requests: Field required")
        if kind != "start_array":
            return invalid_request("requests: Input should be a valid list")
        return invalid_request("requests: List should have at least 1 item after validation, not 0")


def _check_item(
    index: int, item: Any, seen: dict[str, int], pattern: re.Pattern[str]
) -> tuple[str, dict[str, Any]]:
    """``(custom_id, params)`` of request ``index``, or the API's 400 naming the field."""
    where = f"requests.{index}"
    if not isinstance(item, dict):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    for key in item:
        if key not in _ITEM_KEYS:
            raise invalid_request(f"{where}.{key}: Extra inputs are not permitted")
    custom_id = _check_custom_id(where, item.get("custom_id"), "custom_id" in item, pattern)
    first = seen.setdefault(custom_id, index)
    if first != index:
        raise invalid_request(
            f"{where}.custom_id: Value '{custom_id}' is already used by requests.{first}; "
            "custom_id must be unique within a batch"
        )
    if "params" not in item:
        raise invalid_request(f"{where}.params: Field required")
    params = item["params"]
    if not isinstance(params, dict):
        raise invalid_request(f"{where}.params: Input should be a valid dictionary")
    if params.get("stream") not in (None, False):
        raise invalid_request(
            f"{where}.params.stream: Input should be False; a Message Batch request cannot stream"
        )
    return custom_id, params


def _check_custom_id(where: str, value: Any, present: bool, pattern: re.Pattern[str]) -> str:
    if not present:
        raise invalid_request(f"{where}.custom_id: Field required")
    if not isinstance(value, str):
        raise invalid_request(f"{where}.custom_id: Input should be a valid string")
    if not pattern.fullmatch(value):
        raise invalid_request(f"{where}.custom_id: String should match pattern '{pattern.pattern}'")
    return value
