"""Where markers go on a recorded call: under a policy, as recorded, or as a peer places them.

A trace holds no prompt text, so to ask the engine's own breakpoint allocator
(:class:`~engine.providers.anthropic.caching.BreakpointAllocator`) what it would
do, each record becomes a *stand-in payload*: one block per recorded position, in
the same section and message, with the same token count, and with text derived
from the position's prefix hash (equal prefixes give equal stand-ins, so the
allocator's reuse evidence sees the same repeats). Positions map one to one, so
the markers it places land on the recorded positions. (A markable position of 0
tokens, the closing position of a ``tool_result``, stands in as 1 token; only
placement reads the stand-in, billing uses the record's own counts.)
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from engine.decision import CallContext, Decision
from engine.plan._simulate import Placement, Placer, auto_marker
from engine.plan._trace import TTL, TraceBlock, TraceRecord
from engine.providers.anthropic.blocks import iter_blocks
from engine.providers.anthropic.tokens import canonical_json

__all__ = ["caller_placer", "fixed_placer", "peer_placer", "policy_placer", "stand_in_payload"]

_ROLES = ("user", "assistant")


def _text(block: TraceBlock, room: int) -> str:
    body = (block.hash * (room // max(1, len(block.hash)) + 1))[:room]
    return body or block.hash[:1]


def _marker(block: TraceBlock) -> dict[str, Any]:
    return {"cache_control": {"type": "ephemeral", "ttl": block.marker}} if block.marker else {}


def _tool(block: TraceBlock) -> dict[str, Any]:
    base = {"name": f"t_{block.hash[:24]}", "description": "", "input_schema": {"type": "object"}}
    overhead = len(canonical_json({**base, "type": "custom"}).encode("utf-8"))
    base["description"] = "d" * max(0, 4 * block.tokens - overhead)
    return {**base, **_marker(block)}


def _content(block: TraceBlock) -> dict[str, Any]:
    if not block.markable:
        return {"type": "thinking", "thinking": _text(block, 4 * block.tokens), "signature": "s"}
    return {"type": "text", "text": _text(block, 4 * block.tokens), **_marker(block)}


def _messages(blocks: Sequence[TraceBlock]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    key: tuple[Any, Any] | None = None
    for block in blocks:
        role = block.role if block.role in _ROLES else "user"
        this = (block.message, role)
        if key != this:
            out.append({"role": role, "content": []})
            key = this
        out[-1]["content"].append(_content(block))
    return out


def stand_in_payload(record: TraceRecord) -> dict[str, Any]:
    """A request with the record's shape and sizes (see the module docstring)."""
    payload: dict[str, Any] = {"model": record.model, "max_tokens": 1}
    tools = [_tool(b) for b in record.blocks if b.section == "tools"]
    system = [_content(b) for b in record.blocks if b.section == "system"]
    if tools:
        payload["tools"] = tools
    if system:
        payload["system"] = system
    payload["messages"] = _messages([b for b in record.blocks if b.section == "messages"])
    if record.top_level_cache:
        payload["cache_control"] = {"type": "ephemeral", "ttl": record.top_level_cache}
    return payload


def _markers_of(payload: dict[str, Any], record: TraceRecord) -> tuple[TTL | None, ...]:
    blocks = iter_blocks(payload)
    if len(blocks) != len(record.blocks):
        raise ValueError(
            f"stand-in for {record.call_site} has {len(blocks)} positions, record has {len(record.blocks)}"
        )
    markers: list[TTL | None] = [
        ("1h" if b.cache_control.get("ttl") == "1h" else "5m") if b.cache_control else None for b in blocks
    ]
    top = payload.get("cache_control")
    if isinstance(top, dict):
        auto_marker(record.blocks, markers, "1h" if top.get("ttl") == "1h" else "5m")
    return tuple(markers)


def caller_placer(record: TraceRecord) -> Placement:
    """Only what the caller set itself: the request as it was before any policy."""
    markers: list[TTL | None] = [b.marker for b in record.blocks]
    if record.top_level_cache:
        auto_marker(record.blocks, markers, record.top_level_cache)
    return Placement(tuple(markers))


def _batched(decision: Decision, record: TraceRecord) -> bool:
    from engine.providers.anthropic.capabilities import capabilities

    plan = decision.batch
    if plan is None or decision.mode == "shadow" or not capabilities().transport(record.transport).batches:
        return False
    if plan.mode == "accumulate":
        return record.latency != "interactive" and not (record.recorded or {}).get("sent_direct")
    return plan.mode == "explicit" and record.call in ("batch", "abatch")


def _pool(decision: Decision) -> tuple[int, float] | None:
    plan = decision.batch
    return None if plan is None else (int(plan.max_requests), float(plan.max_wait_s))


class _PolicyPlacer:
    """The engine's placement under a compiled policy, learning batch hit rates as it does.

    Batch items are marked only where the expected hit rate pays. That rate is fixed
    when given, else it is the engine's own per-site estimate
    (:class:`~engine.providers.anthropic.caching.BatchHitRates`, same prior), fed by
    the replay with each marked item's draw once its answer would have come back.
    """

    def __init__(self, compiled: Any, batch_hit_rate: float | None) -> None:
        from engine.providers.anthropic.caching import BatchHitRates, BreakpointAllocator

        self._compiled = compiled
        self._fixed = batch_hit_rate
        self._rates = BatchHitRates()
        self._pending: list[tuple[float, int, str, float]] = []
        self._allocators: dict[str, BreakpointAllocator] = {}

    def observe(self, call_site: str, hit: float, at: float) -> None:
        heapq.heappush(self._pending, (at, len(self._pending), call_site, hit))

    def _rate(self, call_site: str, now: float) -> float:
        while self._pending and self._pending[0][0] <= now:
            _at, _n, site, hit = heapq.heappop(self._pending)
            self._rates.observe(site, hit)
        return self._rates.rate(call_site) if self._fixed is None else self._fixed

    def __call__(self, record: TraceRecord) -> Placement:
        from engine.evaluate import evaluate
        from engine.providers.anthropic.caching import BreakpointAllocator

        ctx = CallContext(record.call_site, record.role, record.provider, record.model)
        decision = evaluate(self._compiled, ctx)
        if not decision.enabled:
            return caller_placer(record)
        batch = _batched(decision, record)
        pool = _pool(decision) if batch else None
        if decision.cache is None or decision.mode == "shadow":
            return Placement(caller_placer(record).markers, batch, pool)
        allocator = self._allocators.setdefault(
            record.transport,
            BreakpointAllocator(transport=record.transport),  # type: ignore[arg-type]
        )
        result = allocator.apply(
            stand_in_payload(record),
            decision.cache,
            call_site=record.call_site,
            now=record.ts,
            batch=batch,
            hit_rate=self._rate(record.call_site, record.ts) if batch else 1.0,
        )
        return Placement(_markers_of(result.payload, record), batch, pool)


def policy_placer(compiled: Any, *, batch_hit_rate: float | None = None) -> Placer:
    """Markers and batching as the engine would apply ``compiled`` (a CompiledPolicy).

    Batch items are marked where the batch hit rate pays: ``batch_hit_rate`` when
    given, else the rate the engine would have learned per call site by then from
    the replay's own batch items (a :class:`~engine.plan._simulate.Learner`).
    """
    return _PolicyPlacer(compiled, batch_hit_rate)


def peer_placer(name: str) -> Placer:
    """The documented placement of a peer: ``langchain-middleware`` or ``litellm-system``."""

    def place(record: TraceRecord) -> Placement:
        markers = list(caller_placer(record).markers)
        for section in ("tools", "system") if name == "langchain-middleware" else ("system",):
            last = max((i for i, b in enumerate(record.blocks) if b.section == section), default=None)
            if last is not None and markers[last] is None:
                markers[last] = "5m"
        if name == "langchain-middleware":
            auto_marker(record.blocks, markers, "5m")
        return Placement(tuple(markers))

    return place


def fixed_placer(cache: Any, batch: bool) -> Placer:
    """Every call placed by one cache plan (a CachePlan, or None: caller markers only)."""
    from engine.providers.anthropic.caching import BreakpointAllocator

    allocator = BreakpointAllocator()

    def place(record: TraceRecord) -> Placement:
        pool = (100, 30.0) if batch else None  # the accumulate defaults
        if cache is None:
            return Placement(caller_placer(record).markers, batch, pool)
        result = allocator.apply(
            stand_in_payload(record), cache, call_site=record.call_site, now=record.ts, batch=batch
        )
        return Placement(_markers_of(result.payload, record), batch, pool)

    return place
