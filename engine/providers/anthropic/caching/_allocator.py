"""The breakpoint allocator: turns a cache plan into ``cache_control`` markers on a payload."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine.decision import CachePlan
from engine.providers.anthropic.caching._callers import Ledger, normalize_caller_markers
from engine.providers.anthropic.caching._choose import (
    Candidate,
    Evidence,
    auto_candidates,
    choose_ttl,
    explicit_candidates,
    tiered_ttls,
)
from engine.providers.anthropic.caching._edit import PayloadEditor
from engine.providers.anthropic.caching._exact import ExactCounts, prefix_payload
from engine.providers.anthropic.caching._request import RequestView
from engine.providers.anthropic.caching._reuse import ReuseTracker
from engine.providers.anthropic.caching._types import TTL, Action, CacheResult
from engine.providers.anthropic.capabilities import Capabilities, Transport, capabilities

__all__ = ["BreakpointAllocator"]


class BreakpointAllocator:
    """Places cache markers where they pay; one instance per engine, shared by threads.

    ``apply`` never mutates its input and is idempotent: its output, applied again
    at the same ``now``, comes back unchanged (its own markers count as the
    caller's the second time, and nothing new is expected to pay). It remembers the
    prefixes each call site sent (bounded), which is the evidence ``auto`` mode and
    ``ttl: auto`` decide with.

    ``transport`` is how the payload reaches Claude (``direct``, ``custom`` base URL,
    ``bedrock``, ``vertex``): a transport without block markers gets none, one
    without 1h TTLs gets 5m. ``exact_counter`` (e.g. :func:`sdk_counter`) confirms
    prefix lengths with ``count_tokens`` where the estimate says a prefix is long
    enough; answers are kept by prefix hash.
    """

    def __init__(
        self,
        caps: Capabilities | None = None,
        *,
        transport: Transport = "direct",
        exact_counter: Callable[[dict[str, Any]], int] | None = None,
    ) -> None:
        self._caps = caps
        self.transport: Transport = transport
        self._exact = ExactCounts(exact_counter) if exact_counter is not None else None
        self._tracker = ReuseTracker()
        self._lock = threading.Lock()

    def apply(
        self, payload: dict[str, Any], plan: CachePlan, *, call_site: str, now: float, batch: bool = False
    ) -> CacheResult:
        """A copy of ``payload`` with markers per ``plan``, and why each marker is (not) there."""
        caps = self._caps or capabilities()
        view = RequestView.build(payload, caps, self.transport)
        editor = PayloadEditor(payload)
        ledger = Ledger(view)
        normalize_caller_markers(view, editor, ledger)
        if plan.mode != "off":
            if view.transport.block_markers:
                self._place_engine_markers(
                    view, plan, ledger, editor, call_site=call_site, now=now, batch=batch
                )
            else:
                ledger.notes.append(f"the {self.transport} transport takes no cache markers")
        self._tracker.record(call_site, view.hashes, now, horizon_s=caps.ttl_seconds("1h"))
        return CacheResult(editor.root, tuple(ledger.placements), tuple(ledger.notes))

    def _place_engine_markers(
        self,
        view: RequestView,
        plan: CachePlan,
        ledger: Ledger,
        editor: PayloadEditor,
        *,
        call_site: str,
        now: float,
        batch: bool,
    ) -> None:
        sighting = self._tracker.lookup(call_site, view.hashes, now)
        ttl, why = choose_ttl(plan, view, sighting.median_gap, batch)
        if plan.mode == "explicit":
            candidates = explicit_candidates(plan, view, ledger.notes)
        else:
            evidence = Evidence(sighting.seen, now, float(self._ttl_seconds(ttl)), sighting.last_request)
            candidates = auto_candidates(view, evidence, sorted(ledger.markers))
        tiers = tiered_ttls(plan, view, candidates, sighting.gaps, batch)
        if tiers is not None:
            ttls, why = tiers
        else:
            ttls = {c.index: ttl for c in candidates}
        if candidates:
            ledger.notes.append(why)
        for candidate in candidates:
            self._place(candidate, ttls[candidate.index], view, ledger, editor)

    def _ttl_seconds(self, ttl: TTL) -> int:
        return (self._caps or capabilities()).ttl_seconds(ttl)

    def _prefix_tokens(self, view: RequestView, index: int) -> tuple[int, str]:
        estimate = view.prefix_tokens[index]
        if self._exact is None or estimate < view.model.min_cache_tokens:
            return estimate, "estimated"
        exact = self._exact.count(view.hashes[index], lambda: prefix_payload(view.params, view.blocks, index))
        return exact, "counted"

    def _place(
        self, cand: Candidate, ttl: TTL, view: RequestView, ledger: Ledger, editor: PayloadEditor
    ) -> None:
        i = cand.index
        if i in ledger.markers:
            return
        if cand.refuted is not None:
            ledger.log(i, ttl, "engine", "dropped", f"{cand.reason}; {cand.refuted}")
            return
        tokens, how = self._prefix_tokens(view, i)
        minimum = view.model.min_cache_tokens
        if tokens < minimum:
            reason = (
                f"{cand.reason}; but the prefix is {tokens} tokens ({how}), below the {minimum}-token "
                f"minimum of {view.model.family}"
            )
            ledger.log(i, ttl, "engine", "dropped", reason, tokens)
            return
        action: Action = "placed"
        reason = cand.reason
        before = ledger.earlier_5m(i)
        if ttl == "1h" and before is not None:
            ttl, action = "5m", "downgraded"
            reason += f"; 1h made 5m: it may not follow the 5m marker at {view.path(before)}"
        after = ledger.later_1h(i)
        if ttl == "5m" and after is not None:
            reason += f"; not placed: a 5m marker may not precede the 1h marker at {view.path(after)}"
            ledger.log(i, ttl, "engine", "dropped", reason, tokens)
            return
        if len(ledger.markers) >= view.max_markers:
            engine = len(ledger.markers) - len(ledger.caller)
            reason += (
                f"; not placed: the {view.max_markers}-marker limit is reached "
                f"({len(ledger.caller)} caller, {engine} engine)"
            )
            ledger.log(i, ttl, "engine", "dropped", reason, tokens)
            return
        editor.set_marker(view.blocks[i].path, {"type": "ephemeral", "ttl": ttl})
        ledger.markers[i] = ttl
        ledger.log(i, ttl, "engine", action, reason, tokens)
