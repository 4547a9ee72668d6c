"""Where markers would pay, and with which TTL (before limits and minimums apply).

Candidates come in priority order: when the 4 slots run out, the first ones win.

``auto`` writes a prefix only when it expects a read back:

1. the end of tools/system: shared across calls by construction (one write, then
   reads at 10% for every later call of the call site);
2. the last block, when the conversation is growing (the next turn's request
   starts with this one) or this very prompt was seen at the call site within
   the TTL (a redelivered message, a repeated question);
3. the longest prefix this call site sent before within the TTL, when no other
   marker's 20-position lookback reaches it: it turns that entry into a read;
4. in a growing conversation, the previous turn's end, when the newest turn added
   20 positions or more (the lookback from the last block would not find it).

A one-off prompt (no shared part, never seen) gets nothing: it would pay the write
premium for an entry nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.decision import CachePlan
from engine.providers.anthropic.caching._request import RequestView
from engine.providers.anthropic.caching._types import TTL

__all__ = ["Candidate", "Evidence", "auto_candidates", "choose_ttl", "explicit_candidates", "tiered_ttls"]

FIVE_MIN_S, ONE_HOUR_S = 300.0, 3600.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A position where a marker may pay; ``refuted`` says why it will not after all."""

    index: int
    reason: str
    refuted: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Earlier sightings (per position) at this call site, and the TTL window that counts."""

    seen: list[float | None]
    now: float
    window_s: float
    last_request: float | None = None

    def age(self, index: int) -> float | None:
        return self._age(self.seen[index])

    @property
    def site_age(self) -> float | None:
        """How long ago this call site last sent anything (within the window)."""
        return self._age(self.last_request)

    def _age(self, at: float | None) -> float | None:
        if at is None or self.now - at > self.window_s:
            return None
        return self.now - at


def choose_ttl(plan: CachePlan, view: RequestView, median_gap: float | None, batch: bool) -> tuple[TTL, str]:
    """The TTL for the engine's markers on this request, and why."""
    ttl: TTL
    if plan.ttl in ("5m", "1h"):
        ttl, why = plan.ttl, f"ttl {plan.ttl} by the rule"
    elif batch:
        ttl, why = "1h", "ttl auto: batch-routed, and a batch can outlast 5 minutes"
    elif median_gap is not None and FIVE_MIN_S < median_gap < ONE_HOUR_S:
        ttl, why = "1h", f"ttl auto: reuse gaps at this call site are ~{median_gap:.0f}s (5 min to 1 h)"
    else:
        gap = "no reuse observed yet" if median_gap is None else f"reuse gaps ~{median_gap:.0f}s"
        ttl, why = "5m", f"ttl auto: {gap}"
    if ttl == "1h" and not view.allows_1h:
        return "5m", f"{why}; 1h unavailable ({view.why_no_1h()}), using 5m"
    return ttl, why


def tiered_ttls(
    plan: CachePlan, view: RequestView, candidates: list[Candidate], gaps: tuple[float, ...], batch: bool
) -> tuple[dict[int, TTL], str] | None:
    """``ttl: auto``, explicit ``history`` and ``last`` anchors, a growing conversation: 1h, then 5m.

    A pause of more than 5 minutes must not lose the conversation, so the history
    marker (and every marker before it: a 1h may not follow a 5m) gets 1h. Its 1h
    write covers only what is new since the previous request's entry (the last
    assistant turn): the cheap part. The newest turn is the expensive part; 5m
    costs it ``w1h - w5m`` less now and, when the next turn comes after more than
    5 minutes, ``w1h - read`` more then (re-written under the next 1h marker instead
    of read). So it gets 5m unless the observed share of such pauses reaches
    ``(w1h - w5m) / (w1h - read)`` (about 39% at the documented multipliers).
    None when the rule does not apply (a fixed TTL, ``auto`` placement, batch, no
    ``history`` or ``last`` anchor in the plan or the request).
    """
    last, history = view.anchors.last, view.anchors.history
    if plan.ttl != "auto" or plan.mode != "explicit" or batch or not view.allows_1h:
        return None
    if not view.anchors.growing or last is None or history is None or history >= last:
        return None
    if {history, last} - {c.index for c in candidates}:
        return None
    prices = view.model.prices
    breakeven = (prices.cache_write_1h - prices.cache_write_5m) / (prices.cache_write_1h - prices.cache_read)
    share = sum(g > FIVE_MIN_S for g in gaps) / len(gaps) if gaps else 0.0
    tail: TTL = "1h" if share >= breakeven else "5m"
    ttls: dict[int, TTL] = {c.index: "1h" for c in candidates}
    ttls[last] = tail
    seen = f"{share:.0%} of {len(gaps)} observed reuse gaps exceed 5 minutes" if gaps else "no reuse gaps yet"
    why = (
        f"ttl auto: growing conversation: history at 1h (survives a pause), newest turn at {tail} "
        f"({seen}; 1h pays from {breakeven:.0%})"
    )
    return ttls, why


def explicit_candidates(plan: CachePlan, view: RequestView, notes: list[str]) -> list[Candidate]:
    out: list[Candidate] = []
    for name in plan.breakpoints:
        index = view.anchors.named(name)
        if index is None:
            notes.append(f"anchor {name!r}: the request has no such block")
        elif all(c.index != index for c in out):
            out.append(Candidate(index, f"explicit anchor {name!r}"))
    return out


def _covered(index: int, marks: list[int], lookback: int) -> bool:
    return any(0 <= m - index < lookback for m in marks)


def _stable(view: RequestView, ev: Evidence) -> Candidate | None:
    """The shared head of the request, unless this call site shows it is not shared.

    Shared by construction is a presumption: when the site sent a request within
    the window and its system prompt (or tool set) was not in it, that part varies
    per call, and marking it would pay a write every time and never read.
    """
    a = view.anchors
    if a.stable is None:
        return None
    if ev.site_age is None or ev.age(a.stable) is not None:
        return Candidate(a.stable, "tools/system shared across calls (reused by construction)")
    if a.tools is not None and a.tools != a.stable and ev.age(a.tools) is not None:
        return Candidate(a.tools, "tool set shared across calls (the system prompt varies here)")
    age = ev.site_age or 0.0
    return Candidate(
        a.stable,
        "tools/system shared across calls (reused by construction)",
        refuted=f"not placed: this call site sent a different head {age:.0f}s ago, so it varies per call",
    )


def _last(view: RequestView, ev: Evidence) -> Candidate | None:
    last = view.anchors.last
    if last is None or view.blocks[last].section != "messages":
        return None
    age = ev.age(last)
    if age is not None:
        return Candidate(last, f"the same prompt was sent at this call site {age:.0f}s ago")
    if view.anchors.growing:
        return Candidate(last, "growing conversation: the next turn starts with this prefix")
    return None


def auto_candidates(view: RequestView, ev: Evidence, existing: list[int]) -> list[Candidate]:
    out = [c for c in (_stable(view, ev), _last(view, ev)) if c is not None]
    marks = existing + [c.index for c in out]
    seen = [i for i, b in enumerate(view.blocks) if b.markable and ev.age(i) is not None]
    if seen and not _covered(seen[-1], marks, view.lookback) and seen[-1] not in marks:
        age = ev.age(seen[-1]) or 0.0
        why = f"this prefix was sent at this call site {age:.0f}s ago: read it back"
        out.append(Candidate(seen[-1], why))
        marks.append(seen[-1])
    prev = view.anchors.previous_turn_end
    if view.anchors.growing and prev is not None and not _covered(prev, marks, view.lookback):
        out.append(
            Candidate(
                prev,
                f"long turn: the last marker's {view.lookback}-position lookback "
                "misses the previous turn's entry",
            )
        )
    return out
