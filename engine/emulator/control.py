"""The ``/_emulator`` routes: what a yardstick needs and the real API has no need for.

Billing totals, the request log, reset, the clock and the fault settings. They take
no API key: they are for the operator of the emulator, never for the client under
test.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine.emulator.batches_cache import batch_cache_report
from engine.emulator.errors import invalid_request
from engine.emulator.state import EmulatorState
from engine.emulator.web import read_json

__all__ = ["control_routes"]

_CONTROL_BODY_LIMIT = 1 << 20


async def _json_object(request: Request) -> dict[str, Any]:
    """An optional small JSON object body ({} when empty)."""
    if not await request.body():
        return {}
    body = await read_json(request, _CONTROL_BODY_LIMIT)
    if not isinstance(body, dict):
        raise invalid_request("body: Input should be a JSON object")
    return body


class _Controls:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def billing(self, request: Request) -> Response:
        key = request.query_params.get("api_key")
        snapshot = self.state.billing.snapshot(key)
        snapshot["batch_cache"] = batch_cache_report(self.state, key)
        return JSONResponse(snapshot)

    async def requests(self, request: Request) -> Response:
        raw = request.query_params.get("last", "100")
        if not raw.isdigit():
            raise invalid_request(f"last: expected a non-negative integer, got {raw!r}")
        return JSONResponse({"data": self.state.recent_requests(int(raw))})

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True, "now": self.state.clock.now()})

    async def clock(self, request: Request) -> Response:
        clock = self.state.clock
        if request.method == "POST":
            step = (await _json_object(request)).get("advance_s")
            if isinstance(step, bool) or not isinstance(step, int | float) or step < 0:
                raise invalid_request(f"advance_s: expected a number of seconds >= 0, got {step!r}")
            clock.advance(float(step))
        return JSONResponse({"now": clock.now(), "offset_s": clock.offset})

    async def faults(self, request: Request) -> Response:
        state = self.state
        if request.method == "POST":
            body = await _json_object(request)
            try:
                with state.lock:
                    state.config.update(body)
                    if "seed" in body:
                        state.reseed(int(body["seed"]))
            except ValueError as exc:
                raise invalid_request(str(exc)) from exc
        return JSONResponse(state.config.as_dict())


def control_routes(state: EmulatorState) -> list[BaseRoute]:
    """The ``/_emulator`` routes bound to ``state``."""
    c = _Controls(state)
    return [
        Route("/_emulator/billing", c.billing, methods=["GET"]),
        Route("/_emulator/requests", c.requests, methods=["GET"]),
        Route("/_emulator/reset", c.reset, methods=["POST"]),
        Route("/_emulator/clock", c.clock, methods=["GET", "POST"]),
        Route("/_emulator/faults", c.faults, methods=["GET", "POST"]),
    ]
