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
    batch_verdict,
    batch_why,
    choose_ttl,
    explicit_candidates,
    tiered_ttls,
)
from engine.providers.anthropic.caching._edit import PayloadEditor
from engine.providers.anthropic.caching._entries import CacheBook
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
    without 1h TTLs gets 5m. ``exact_counter`` (e.g. :func:`sdk_counter`) counts
    prefix lengths with ``count_tokens`` where the estimate is near the model's
    minimum (either side: the estimate can undercount); answers are kept by prefix
    hash. A counter passed per call to ``apply`` does the same when none was given here.
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
        one_hour = float((caps or capabilities()).ttl_seconds("1h"))
        self._tracker = ReuseTracker(horizon_s=one_hour)
        self._book = CacheBook(long_ttl_s=one_hour)
        self._lock = threading.Lock()

    def apply(
        self,
        payload: dict[str, Any],
        plan: CachePlan,
        *,
        call_site: str,
        now: float,
        batch: bool = False,
        counter: Callable[[dict[str, Any]], int] | None = None,
        sent: bool = True,
        hit_rate: float = 1.0,
    ) -> CacheResult:
        """A copy of ``payload`` with markers per ``plan``, and why each marker is (not) there.

        ``counter`` (e.g. :func:`sdk_counter` on the caller's client) counts a prefix
        exactly where the estimate is near the model's minimum, unless the allocator
        was built with one. ``sent=False`` (shadow mode: the request goes out
        unchanged) remembers only the caller's own markers as written. ``hit_rate``
        is the chance a marker in this request is read back when its prefix comes
        again (below 1 for a batch item: hits inside batches are best effort).
        """
        caps = self._caps or capabilities()
        view = RequestView.build(payload, caps, self.transport)
        editor = PayloadEditor(payload)
        ledger = Ledger(view)
        normalize_caller_markers(view, editor, ledger)
        if plan.mode != "off":
            if view.transport.block_markers:
                self._place_engine_markers(
                    view,
                    plan,
                    ledger,
                    editor,
                    call_site=call_site,
                    now=now,
                    batch=batch,
                    counter=counter,
                    hit_rate=hit_rate,
                )
            else:
                ledger.notes.append(f"the {self.transport} transport takes no cache markers")
        # A batch item's writes are uncertain (it may read, or run after its entry lapsed),
        # and a shadow request carries only the caller's markers: neither is remembered as written.
        sure = sent and not batch
        kept = ledger.markers if sure else {i: t for i, t in ledger.markers.items() if i in ledger.caller}
        writes = [
            (i, float(caps.ttl_seconds(ttl)))
            for i, ttl in kept.items()
            if ledger.counted.get(i, view.prefix_tokens[i]) >= view.model.min_cache_tokens
        ]
        self._tracker.record(call_site, view.hashes, now, horizon_s=caps.ttl_seconds("1h"), written=writes)
        self._book.record(call_site, view.hashes, now, markers=writes, lookback=view.lookback)
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
        counter: Callable[[dict[str, Any]], int] | None,
        hit_rate: float,
    ) -> None:
        sighting = self._tracker.lookup(call_site, view.hashes, now)
        ttl, why = choose_ttl(plan, view, sighting.gaps, batch)
        if plan.mode == "explicit":
            candidates = explicit_candidates(plan, view, ledger.notes)
        else:
            evidence = Evidence(
                sighting.seen,
                now,
                float(self._ttl_seconds(ttl)),
                sighting.last_request,
                runs=sighting.runs,
                written=sighting.written,
                reached=sighting.reached,
                prices=view.model.prices,
                ttl=ttl,
                hit_rate=hit_rate,
            )
            candidates = auto_candidates(view, evidence, sorted(ledger.markers))
        tiers = tiered_ttls(
            plan,
            view,
            candidates,
            sighting.gaps,
            batch,
            lambda: self._book.standing(call_site, view.hashes, now),
        )
        if tiers is not None:
            ttls, why = tiers
        else:
            ttls = {c.index: ttl for c in candidates}
        if batch and candidates:
            verdict = batch_verdict(plan, view, hit_rate)
            if verdict is None:
                ledger.notes.append(why)
                for c in candidates:
                    reason = f"{c.reason}; not placed: {batch_why(view, hit_rate)}"
                    ledger.log(c.index, ttls[c.index], "engine", "dropped", reason)
                return
            ttls = {c.index: verdict[0] for c in candidates}
            why = verdict[1]
        if candidates:
            ledger.notes.append(why)
        for candidate in candidates:
            self._place(candidate, ttls[candidate.index], view, ledger, editor, counter)

    def failed(self, payload: dict[str, Any], *, now: float) -> None:
        """``payload`` (as :meth:`apply` returned it, at ``now``) came back with an error and no answer.

        Nothing it would have written is counted on for what the next request of its
        conversation reads (:meth:`CacheBook.forget`): its resend weighs its
        checkpoint against the cache as it was before. Its call site's memory forgets
        it too (:meth:`ReuseTracker.forget`): the resend is no repeat of its prompt.
        """
        view = RequestView.build(payload, self._caps or capabilities(), self.transport)
        self._book.forget(view.hashes, now)
        self._tracker.forget(view.hashes, now)

    def seen_before(self, call_site: str, digest: bytes, now: float) -> bool:
        """Whether this call site sent the prefix ``digest`` within the last hour (it is reused)."""
        return self._tracker.lookup(call_site, [digest], now).seen[0] is not None

    def is_written(self, call_site: str, digest: bytes, now: float) -> bool:
        """Whether this call site wrote an entry at ``digest`` that is alive at ``now``."""
        return self._tracker.is_written(call_site, digest, now)

    def mark_written(self, call_site: str, digest: bytes, now: float, ttl: TTL) -> None:
        """Remember a write made outside :meth:`apply` (a pre-warm before a batch)."""
        self._tracker.mark_written(call_site, digest, now, float(self._ttl_seconds(ttl)))

    def _ttl_seconds(self, ttl: TTL) -> int:
        return (self._caps or capabilities()).ttl_seconds(ttl)

    def _prefix_tokens(
        self, view: RequestView, index: int, counter: Callable[[dict[str, Any]], int] | None
    ) -> tuple[int, str]:
        """The prefix length: counted exactly where the estimate is near the minimum.

        The local estimate (bytes / 4) can be off either way against the real
        tokenizer (by up to ``exact_count_band`` in the price table), so a prefix
        whose estimate lies in that band around the model's minimum is counted with
        ``count_tokens``, once per prefix hash. Far outside the band, the estimate
        decides. A counter that fails leaves the estimate in force (fail open).
        """
        estimate = view.prefix_tokens[index]
        minimum = view.model.min_cache_tokens
        band = view.exact_band
        if not minimum / band[0] <= estimate < minimum * band[1]:
            return estimate, "estimated"
        exact = self._exact
        if exact is None and counter is not None:
            exact = self._exact = ExactCounts(counter)
        if exact is None:
            return estimate, "estimated"
        try:
            value = exact.count(
                view.hashes[index], lambda: prefix_payload(view.params, view.blocks, index), counter
            )
        except Exception as exc:
            return estimate, f"estimated; count_tokens failed: {type(exc).__name__}"
        return value, "counted"

    def _place(
        self,
        cand: Candidate,
        ttl: TTL,
        view: RequestView,
        ledger: Ledger,
        editor: PayloadEditor,
        counter: Callable[[dict[str, Any]], int] | None,
    ) -> None:
        i = cand.index
        if i in ledger.markers:
            return
        if cand.refuted is not None:
            ledger.log(i, ttl, "engine", "dropped", f"{cand.reason}; {cand.refuted}")
            return
        tokens, how = self._prefix_tokens(view, i, counter)
        if how == "counted":
            ledger.counted[i] = tokens
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
