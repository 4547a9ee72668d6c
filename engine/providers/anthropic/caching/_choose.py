"""Where markers would pay, and with which TTL (before limits and minimums apply).

Candidates come in priority order: when the 4 slots run out, the first ones win.

``auto`` writes a prefix only when it expects a read back:

1. the end of tools/system: shared across calls by construction (one write, then
   reads at 10% for every later call of the call site);
2. the last block, when the conversation is growing (the next turn's request
   starts with this one), or this very prompt was written at the call site and
   its entry is alive (a read), or it was sent before and the site's runs of
   repeats say a further repeat is likely enough to pay for the write;
3. the longest prefix this call site sent before within the TTL, when no other
   marker's 20-position lookback reaches it: a read when an entry was written
   there and is alive; a write only where the break-even says so (a prefix
   merely *sent* before is no cache entry: writing it on its second use pays
   only if a third use is likely);
4. in a growing conversation, the previous turn's end, when an entry was written
   there and the newest turn added 20 positions or more (the lookback from the
   last block would not find it).

A one-off prompt (no shared part, never seen) gets nothing: it would pay the write
premium for an entry nobody reads.

Break-even, always on the model's own price row (input ``i``, write ``w`` at the
TTL, read ``r``): a write pays when the chance ``p`` of a later read satisfies
``p * (i - r) >= w - i``; ``ttl: auto`` picks the TTL with the lower expected
cost per reuse over the observed gap distribution (a gap within the TTL is a
read, a longer one a fresh write).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.decision import CachePlan
from engine.providers.anthropic.caching._entries import Standing
from engine.providers.anthropic.caching._request import RequestView
from engine.providers.anthropic.caching._types import TTL
from engine.providers.anthropic.capabilities import Prices

__all__ = [
    "Candidate",
    "Evidence",
    "auto_candidates",
    "batch_verdict",
    "batch_why",
    "choose_ttl",
    "explicit_candidates",
    "tiered_ttls",
    "ttl_costs",
    "write_pays",
]

FIVE_MIN_S, ONE_HOUR_S = 300.0, 3600.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A position where a marker may pay; ``refuted`` says why it will not after all."""

    index: int
    reason: str
    refuted: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Earlier sightings (per position) at this call site, and the TTL window that counts.

    ``runs[i]``: how many times in a row position ``i``'s prefix has now been sent
    (this request included); ``written[i]``: whether an entry written there is
    alive; ``continues(k)``: the site's observed chance that a run of ``k`` goes on,
    and over how many runs. ``hit_rate`` scales every expected read (a batch reads
    its cache entries only that often).
    """

    seen: list[float | None]
    now: float
    window_s: float
    last_request: float | None = None
    runs: list[int] = field(default_factory=list)
    written: list[bool] = field(default_factory=list)
    reached: tuple[int, ...] = ()
    prices: Prices | None = None
    ttl: TTL = "5m"
    hit_rate: float = 1.0

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

    def is_written(self, index: int) -> bool:
        return bool(self.written) and self.written[index]

    def continues(self, k: int) -> tuple[float, int]:
        if k < 1 or k >= len(self.reached) or self.reached[k] == 0:
            return 0.0, 0
        nxt = self.reached[k + 1] if k + 1 < len(self.reached) else 0
        return nxt / self.reached[k], self.reached[k]


def write_pays(p_read: float, prices: Prices, ttl: TTL) -> bool:
    """Whether a write at ``ttl`` pays for itself when it is read back with chance ``p_read``."""
    write = prices.cache_write_1h if ttl == "1h" else prices.cache_write_5m
    return p_read * (prices.input - prices.cache_read) >= write - prices.input


def _pause_share(gaps: tuple[float, ...]) -> float:
    """The share of ``gaps`` between 5 minutes and an hour: pauses a 1h entry outlives and a 5m one not."""
    return sum(FIVE_MIN_S < g <= ONE_HOUR_S for g in gaps) / len(gaps) if gaps else 0.0


def ttl_costs(gaps: tuple[float, ...], prices: Prices) -> tuple[float, float]:
    """Expected price per reuse (per token, standard tier) with 5m and with 1h entries.

    Each observed gap is a reuse: within the TTL it reads; past it the entry is gone
    and the reuse writes again at that TTL's price.
    """
    n = len(gaps)
    within_5m = sum(g <= FIVE_MIN_S for g in gaps) / n
    within_1h = sum(g <= ONE_HOUR_S for g in gaps) / n
    r = prices.cache_read
    return (
        within_5m * r + (1 - within_5m) * prices.cache_write_5m,
        within_1h * r + (1 - within_1h) * prices.cache_write_1h,
    )


def batch_item_cost(q: float, prices: Prices, ttl: TTL) -> float:
    """Expected price per marked token of a batch item that reads its entry with chance ``q``.

    A reading item pays the read price; one that does not writes the prefix again at
    the marker's TTL. (The batch discount multiplies both sides of every comparison.)
    """
    write = prices.cache_write_1h if ttl == "1h" else prices.cache_write_5m
    return q * prices.cache_read + (1 - q) * write


def batch_verdict(plan: CachePlan, view: RequestView, q: float) -> tuple[TTL, str] | None:
    """The TTL for a batch item's markers, or None when markers do not pay at hit rate ``q``.

    ``ttl: auto`` takes 5m, the cheaper write at any hit rate (the shared prefix is
    warmed at 1h before the batch, and every read refreshes it); a fixed TTL is kept.
    Markers go only where the expected cost beats plain input: above ~22% (5m) or
    ~53% (1h) at the documented multipliers, from the model's own price row.
    """
    prices = view.model.prices
    ttl: TTL = plan.ttl if plan.ttl in ("5m", "1h") else "5m"
    if ttl == "1h" and not view.allows_1h:
        ttl = "5m"
    cost = batch_item_cost(q, prices, ttl)
    if cost >= prices.input:
        return None
    return ttl, (
        f"batch item: this call site's batches read their entries {q:.0%} of the time, so a {ttl} marker "
        f"costs {cost:.3f} per token against {prices.input:.3f} plain ({view.model.family} prices)"
    )


def batch_why(view: RequestView, q: float) -> str:
    prices = view.model.prices
    cost = batch_item_cost(q, prices, "5m")
    return (
        f"batch item: this call site's batches read their entries only {q:.0%} of the time; a marker "
        f"would cost {cost:.3f} per token against {prices.input:.3f} plain, so the batch goes without"
    )


def choose_ttl(plan: CachePlan, view: RequestView, gaps: tuple[float, ...], batch: bool) -> tuple[TTL, str]:
    """The TTL for the engine's markers on this request, and why.

    ``ttl: auto`` compares the expected cost per reuse of each TTL over the site's
    observed reuse gaps, at the model's own prices (:func:`ttl_costs`). A batch item
    gets 1h: its batch may run longer than 5 minutes after the entry was warmed.
    """
    ttl: TTL
    if plan.ttl in ("5m", "1h"):
        ttl, why = plan.ttl, f"ttl {plan.ttl} by the rule"
    elif batch:
        ttl, why = "1h", "ttl auto: batch-routed, and a batch can outlast 5 minutes"
    elif gaps:
        c5, c1 = ttl_costs(gaps, view.model.prices)
        ttl = "1h" if c1 < c5 else "5m"
        why = (
            f"ttl auto: over {len(gaps)} observed reuse gaps a reuse costs {c5:.3f} with 5m entries and "
            f"{c1:.3f} with 1h entries (USD per million tokens, {view.model.family} prices): {ttl}"
        )
    else:
        ttl, why = "5m", "ttl auto: no reuse observed yet (5m is the cheaper write)"
    if ttl == "1h" and not view.allows_1h:
        return "5m", f"{why}; 1h unavailable ({view.why_no_1h()}), using 5m"
    return ttl, why


MIN_PAUSES = 5  #: follow gaps a site needs before a 1h checkpoint is weighed instead of always made


def tiered_ttls(
    plan: CachePlan,
    view: RequestView,
    candidates: list[Candidate],
    gaps: tuple[float, ...],
    batch: bool,
    standing: Callable[[], Standing] | None = None,
) -> tuple[dict[int, TTL], str] | None:
    """``ttl: auto``, explicit ``history`` and ``last`` anchors, a conversation: 1h, then 5m.

    A pause of more than 5 minutes must not lose the conversation, so a 1h entry
    (a *checkpoint*) should reach as far into it as pays: 1h markers first (a 1h
    may not follow a 5m), 5m after. Where the checkpoint ends is weighed once the
    site has shown its pauses (its follow gaps, :mod:`._entries`) and the engine
    knows what this conversation's cache holds (``standing()``, asked only when
    the rule applies): see
    :func:`_checkpoint`. Until then the history marker gets 1h (its write covers
    only what is new since the previous request's entry: usually the last
    assistant turn) and the newest turn 5m, unless pauses between 5 minutes and an
    hour are common enough that 1h pays for it too, ``(w1h - w5m) / (w1h - read)``
    of them (about 39% at the documented multipliers).

    A conversation's opening request (no assistant turn yet) is weighed the same
    way, with the shared head (tools/system) as its history: see :func:`_opening`.

    None when the rule does not apply (a fixed TTL, ``auto`` placement, batch, no
    ``history`` or ``last`` anchor in the plan or the request).
    """
    last, history = view.anchors.last, view.anchors.history
    if plan.ttl != "auto" or plan.mode != "explicit" or batch or not view.allows_1h:
        return None
    if not view.anchors.growing or last is None or history is None or history >= last:
        return _opening(plan, view, candidates, standing)
    if {history, last} - {c.index for c in candidates}:
        return None
    held = standing() if standing is not None else Standing()
    if held.known and len(held.follows) >= MIN_PAUSES:
        head, tail, why = _checkpoint(view, history, last, held)
    else:
        head, tail, why = _presumed(view, gaps)
    stable = view.anchors.stable if view.anchors.stable is not None else -1
    ttls = {c.index: "1h" if c.index <= stable else tail if c.index == last else head for c in candidates}
    return ttls, f"ttl auto: growing conversation: {why}"


def _opening(
    plan: CachePlan,
    view: RequestView,
    candidates: list[Candidate],
    standing: Callable[[], Standing] | None,
) -> tuple[dict[int, TTL], str] | None:
    """A conversation's opening request: the shared head (tools/system) at 1h, the first turn weighed.

    The head's entry is written by an opening request and then only refreshed: every
    later request of every conversation reads past it, into its own history, and a
    refresh keeps the TTL the entry was written with. A 5m head is therefore lost at
    the first lull of 5 minutes in the site's traffic, while the requests that read
    past it go on, and nothing writes it again until a request that cannot read past
    it comes: a conversation that resumes after its own entries expired (a pause of
    more than an hour) writes the whole head at 1.25x-2x instead of reading it at
    0.1x. The 1h head costs ``w1h - w5m`` on the head once per lifetime of the entry,
    which one such resume pays back.

    The first turn is this conversation's own, weighed like a growing conversation's
    newest turn (:func:`_checkpoint`) with the head as its live 1h entry: at 1h it
    costs ``w1h - w5m`` now; at 5m it is lost to a pause with the weighed chance
    ``p`` of the site's follow gaps (Laplace's rule, so from the first request on),
    ``p * (w5m - read)``. The site's reuse gaps would mislead here: conversations
    that start minutes apart look like pauses, though each goes on within seconds.
    """
    stable, last = view.anchors.stable, view.anchors.last
    conversation = {"history", "last"} <= set(plan.breakpoints)
    if not conversation or stable is None or last is None or all(c.index > stable for c in candidates):
        return None
    head = (
        "ttl auto: a conversation's opening request: its shared head at 1h (written once, every later "
        "request reads past it, so it keeps the TTL written now through any lull)"
    )
    if last <= stable:
        return {c.index: "1h" for c in candidates}, head
    held = standing() if standing is not None else Standing()
    share, p = _weighed_pauses(held.follows)
    prices, tokens = view.model.prices, view.prefix_tokens
    read_to = max(tokens[stable], tokens[held.hit] if held.hit >= 0 else 0)
    now = max(0, tokens[last] - read_to) * (prices.cache_write_1h - prices.cache_write_5m)
    later = (tokens[last] - tokens[stable]) * p * (prices.cache_write_5m - prices.cache_read)
    tail: TTL = "1h" if now < later else "5m"
    ttls: dict[int, TTL] = {c.index: "1h" if c.index <= stable else tail for c in candidates}
    return ttls, (
        f"{head}; first turn at {tail} ({share:.0%} of {len(held.follows)} follow-ups here came after "
        f"5 minutes to an hour, weighed as {p:.0%}; expected USD: at 1h {now / 1e6:.6f}, "
        f"at 5m {later / 1e6:.6f})"
    )


def _weighed_pauses(gaps: tuple[float, ...]) -> tuple[float, float]:
    """The share of ``gaps`` between 5 minutes and an hour, and the chance ``p`` weighed from it.

    One such pause and one quick follow-up are assumed up front (Laplace's rule): a
    site that has not paused yet is no proof that it never will.
    """
    share = _pause_share(gaps)
    return share, (share * len(gaps) + 1) / (len(gaps) + 2)


def _presumed(view: RequestView, gaps: tuple[float, ...]) -> tuple[TTL, TTL, str]:
    """History 1h; the newest turn 1h only when the site's reuse gaps say pauses are common."""
    prices = view.model.prices
    breakeven = (prices.cache_write_1h - prices.cache_write_5m) / (prices.cache_write_1h - prices.cache_read)
    share = _pause_share(gaps)
    tail: TTL = "1h" if share >= breakeven else "5m"
    seen = (
        f"{share:.0%} of {len(gaps)} observed reuse gaps are between 5 minutes and an hour"
        if gaps
        else "no reuse gaps yet"
    )
    return (
        "1h",
        tail,
        f"history at 1h (survives a pause), newest turn at {tail} ({seen}; 1h pays from {breakeven:.0%})",
    )


def _checkpoint(view: RequestView, history: int, last: int, standing: Standing) -> tuple[TTL, TTL, str]:
    """Where the 1h entry should end: nowhere new, at the history anchor, or at the newest turn.

    A checkpoint at position ``B`` costs ``w1h - w5m`` per token it writes now (from
    the entry this request reads, ``hit``, to ``B``). When the next call of the
    conversation comes after a pause of 5 minutes to an hour (with chance ``p``),
    every token past the live 1h entry is lost and written again instead of read:
    ``p * (w5m - read)`` per token. The cheapest of the three wins. So a call whose
    follow-up comes within seconds (a tool call) makes no checkpoint, and neither
    does one that would write a long span at 1h (the first call after a lapse): the
    next call checkpoints one short block instead.

    ``p`` is the share of this site's follow gaps in that range, counted with one
    such pause and one quick follow-up assumed up front (Laplace's rule). A site
    that has not paused yet is no proof that it never will: an estimate of zero
    would stake the whole conversation against the premium on a 20-token block.
    """
    prices = view.model.prices
    tokens = view.prefix_tokens
    gaps = standing.follows
    share, p = _weighed_pauses(gaps)

    def at(i: int) -> int:
        return tokens[i] if i >= 0 else 0

    read_to, kept = at(standing.hit), at(standing.checkpoint)
    premium, loss = (
        prices.cache_write_1h - prices.cache_write_5m,
        p * (prices.cache_write_5m - prices.cache_read),
    )

    def cost(end: int) -> float:  # micro-USD expected: the 1h premium now, the loss on a pause
        reach = max(kept, at(end)) if end >= 0 else kept
        return max(0, at(end) - read_to) * premium + (tokens[last] - reach) * loss

    options: list[tuple[float, TTL, TTL, str]] = [
        (cost(-1), "5m", "5m", "no new checkpoint"),
        (cost(history), "1h", "5m", "checkpoint at the history"),
        (cost(last), "1h", "1h", "checkpoint at the newest turn"),
    ]
    best = min(options, key=lambda o: o[0])
    figures = ", ".join(f"{name} {c / 1e6:.6f}" for c, _, _, name in options)
    why = (
        f"{best[3]}: history at {best[1]}, newest turn at {best[2]} ({share:.0%} of "
        f"{len(gaps)} follow-ups here came after 5 minutes to an hour, weighed as {p:.0%}; "
        f"expected USD: {figures})"
    )
    return best[1], best[2], why


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


def _repeat(view: RequestView, ev: Evidence, index: int, what: str) -> Candidate | None:
    """A prefix this site sent before: read back if written, else written only where it pays."""
    age = ev.age(index)
    if age is None:
        return None
    if ev.is_written(index):
        return Candidate(
            index, f"{what} was written at this call site and is alive ({age:.0f}s ago): read it back"
        )
    run = ev.runs[index] if ev.runs else 2
    p, n = ev.continues(run)
    p *= ev.hit_rate
    if ev.prices is not None and n and write_pays(p, ev.prices, ev.ttl):
        return Candidate(
            index,
            f"{what} was sent {run} times in a row at this call site ({age:.0f}s ago) and never written; "
            f"{p:.0%} of {n} such runs went on, so a {ev.ttl} write pays",
        )
    return None


def _last(view: RequestView, ev: Evidence) -> Candidate | None:
    last = view.anchors.last
    if last is None or view.blocks[last].section != "messages":
        return None
    repeat = _repeat(view, ev, last, "the same prompt")
    if repeat is not None:
        return repeat
    if not view.anchors.growing:
        return None
    # How often this site's prompts were sent again as the start of a longer one
    # (a next turn, a retry), with one success assumed up front: a conversation
    # site learns it goes on; a reflection retry site learns that few retries follow.
    tried = ev.reached[1] if len(ev.reached) > 1 else 0
    went_on = ev.reached[2] if len(ev.reached) > 2 else 0
    p = (went_on + 1) / (tried + 1)
    if ev.prices is not None and not write_pays(p * ev.hit_rate, ev.prices, ev.ttl):
        return None
    why = (
        f"growing conversation: the next turn starts with this prefix ({went_on} of {tried} prompts went on)"
    )
    return Candidate(last, why)


def auto_candidates(view: RequestView, ev: Evidence, existing: list[int]) -> list[Candidate]:
    out = [c for c in (_stable(view, ev), _last(view, ev)) if c is not None]
    marks = existing + [c.index for c in out]
    seen = [i for i, b in enumerate(view.blocks) if b.markable and ev.age(i) is not None]
    written = [i for i in seen if ev.is_written(i)]
    for index in dict.fromkeys([*seen[-1:], *written[-1:]]):
        if _covered(index, marks, view.lookback) or index in marks:
            break
        repeat = _repeat(view, ev, index, "this prefix")
        if repeat is not None:
            out.append(repeat)
            marks.append(index)
            break
    prev = view.anchors.previous_turn_end
    wrote = prev is not None and ev.is_written(prev)  # else there is no entry to reach
    if view.anchors.growing and prev is not None and wrote and not _covered(prev, marks, view.lookback):
        out.append(
            Candidate(
                prev,
                f"long turn: the last marker's {view.lookback}-position lookback "
                "misses the previous turn's entry",
            )
        )
    return out
