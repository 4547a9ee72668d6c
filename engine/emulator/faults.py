"""Injected failures, drawn from the seeded generator.

``/v1/messages`` (``fault_rate``): a faulted request gets, with equal odds: 429
``rate_limit_error`` with ``retry-after``, 529 ``overloaded_error``, 500
``api_error``, or a dropped connection (headers sent, body cut short).

The batch API, for the batch path's promises (never pay twice, never hang):

- ``batch_fault_rate``: create, list, retrieve and results requests get the same
  four faults, before anything happens (a faulted create makes no batch);
- ``batch_create_lost_rate``: a create makes the batch, then answers 500 or drops
  the connection, so the client cannot know the batch exists;
- ``results_cut_rate``: a results download stops after ``results_cut_line`` lines
  (a random line when 0), the connection closed mid-body.

The same seed and the same request order give the same faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from engine.emulator.errors import ApiError
from engine.emulator.state import EmulatorState

__all__ = [
    "DROP",
    "CutResponse",
    "DroppedResponse",
    "draw_batch_fault",
    "draw_create_lost",
    "draw_fault",
    "draw_results_cut",
]

DROP: Literal["drop"] = "drop"
_KINDS = ("429", "529", "500", DROP)

Fault = ApiError | Literal["drop"]


class DroppedResponse(Response):
    """Headers promise a body that never fully arrives: the client sees a cut connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"type":"message",', "more_body": True})


class CutResponse(Response):
    """A JSONL download that stops after ``keep`` lines while promising the whole file."""

    def __init__(self, chunks: Iterator[bytes], size: int, keep: int) -> None:
        super().__init__(media_type="application/binary")
        self.chunks, self.size, self.keep = chunks, size, keep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-length", str(max(self.size, 1)).encode()),
            (b"content-type", b"application/binary"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = self.keep
        for chunk in self.chunks:
            lines = chunk.split(b"\n")
            kept: list[bytes] = []
            for line in lines[:-1]:
                if left == 0:
                    break
                kept.append(line + b"\n")
                left -= 1
            if kept:
                await send({"type": "http.response.body", "body": b"".join(kept), "more_body": True})
            if left == 0 or len(kept) < len(lines) - 1:
                break
        # returning with the body short of its content-length: the server closes the connection


def _fault(state: EmulatorState, kind: str) -> Fault:
    if kind == "429":
        wait = str(state.config.retry_after_s)
        return ApiError(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit (emulated fault)",
            headers={"retry-after": wait},
        )
    if kind == "529":
        return ApiError(529, "overloaded_error", "Overloaded (emulated fault)")
    if kind == "500":
        return ApiError(500, "api_error", "Internal server error (emulated fault)")
    return DROP


def _draw(state: EmulatorState, rate: float, kinds: tuple[str, ...]) -> Fault | None:
    with state.lock:
        if rate <= 0 or state.rng.random() >= rate:
            return None
        kind = kinds[state.rng.randrange(len(kinds))]
    return _fault(state, kind)


def draw_fault(state: EmulatorState) -> Fault | None:
    """The fault for the next ``/v1/messages`` request, or None."""
    return _draw(state, state.config.fault_rate, _KINDS)


def draw_batch_fault(state: EmulatorState) -> Fault | None:
    """The fault for the next batch API request (before it does anything), or None."""
    return _draw(state, state.config.batch_fault_rate, _KINDS)


def draw_create_lost(state: EmulatorState) -> Fault | None:
    """How a create that made its batch fails anyway (500 or dropped), or None."""
    return _draw(state, state.config.batch_create_lost_rate, ("500", DROP))


def draw_results_cut(state: EmulatorState, lines: int) -> int | None:
    """After how many of ``lines`` result lines the download stops, or None."""
    with state.lock:
        rate = state.config.results_cut_rate
        if rate <= 0 or state.rng.random() >= rate:
            return None
        fixed = state.config.results_cut_line
        return min(fixed, lines) if fixed > 0 else state.rng.randrange(max(1, lines))
