"""Injected failures for ``/v1/messages``, drawn from the seeded generator.

A faulted request gets, with equal odds: 429 ``rate_limit_error`` with
``retry-after``, 529 ``overloaded_error``, 500 ``api_error``, or a dropped
connection (headers sent, body cut short). The same seed and the same request
order give the same faults.
"""

from __future__ import annotations

from typing import Literal

from engine.emulator.errors import ApiError
from engine.emulator.state import EmulatorState

__all__ = ["DROP", "draw_fault"]

DROP: Literal["drop"] = "drop"
_KINDS = ("429", "529", "500", DROP)


def draw_fault(state: EmulatorState) -> ApiError | Literal["drop"] | None:
    """The fault for the next request, or None."""
    with state.lock:
        rate = state.config.fault_rate
        if rate <= 0 or state.rng.random() >= rate:
            return None
        kind = _KINDS[state.rng.randrange(len(_KINDS))]
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
