"""A floor for policies that cannot see when a conversation's next call will come.

The floor of :mod:`._bound` is clairvoyant about pauses: it charges a 1h write
only where a pause of more than 5 minutes follows. A real policy decides at each
call, before the pause after it is known, how far a 1h entry (a *checkpoint*)
should reach. This module computes the least *expected* cost of any placement
whose choices at a call depend on nothing that happens after it, when the pause
after each call is drawn independently from its call site's distribution of
pauses (by default the one the trace itself shows). docs/savings.md, step 7,
has the proof; in short:

- a *chain* is a conversation as the trace shows it: each call carries its
  predecessor's whole prompt on. Its *private* positions are the ones no call
  outside the chain ever sent, so only the chain's own calls write or read them;
- the per-call floor, with no TTL premium charged on reads of private positions
  (over their whole creation run, shared positions before them included: whether
  that 1h write happens is what the program decides), is still a floor on
  everything else (:func:`._bound.floor_shares` ``ttl_exempt``);
- on private positions, a placement pays on top of it at least: ``w1h - w5m``
  per token its 1h writes reach past what the call could read, ``w1h - input``
  per token of a block it writes again at 1h, and, after a pause of 5 minutes to
  an hour, per token past its furthest 1h entry (lost: no 5m entry outlives the
  pause) ``input - read``, less ``w5m - input`` on a position the previous call
  sent first (its write premium may be charged to this very call);
- a lost position written again costs ``w5m - input`` whatever follows (its run's
  premium was charged before); left unwritten, a quick next call cannot read it;
- a position a call sends first and must write for the next call to read, and
  does not write at 1h, costs the cheaper of ``w5m - input`` (a 5m write, wasted)
  times the chance that a pause of more than 5 minutes follows and ``(input -
  read) - (w5m - input)`` (no write, so a quick next call cannot read it) times
  the chance that it does not;
- a dynamic program over the furthest 1h entry finds the least expected sum of
  those, call by call, choices made before the pause is drawn.

With the pause after each call certain, the class the trace shows, the same
program is a floor on what any placement pays, clairvoyant or not
(:func:`hindsight_lower_bound`, docs/savings.md step 8).

Only chains whose calls all go direct (interactive) are covered; every other
position keeps the clairvoyant floor's TTL premium. The result is a floor on the
expected cost: one run's pauses can be luckier than their distribution.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from engine.plan._bound import _window, floor_shares, tolerates_batch
from engine.plan._trace import TraceRecord
from engine.providers.anthropic.capabilities import Prices, capabilities

__all__ = ["Pauses", "follow_ups", "hindsight_lower_bound", "observed_pauses", "online_lower_bound"]


@dataclass(frozen=True, slots=True)
class Pauses:
    """Shares of the pauses after a call site's calls: up to 5 minutes, 5 minutes to 1h, longer."""

    short: float
    medium: float
    long: float


_SHORT, _MEDIUM, _LONG = 0, 1, 2


@dataclass(slots=True)
class _Chain:
    calls: list[int]
    ok: bool = True


def follow_ups(records: list[TraceRecord]) -> dict[int, int]:
    """Per call (index in time-ordered ``records``), the call whose whole prompt its own starts with."""
    ended: dict[tuple[str, str], int] = {}
    prev: dict[int, int] = {}
    for i, record in enumerate(records):
        for block in reversed(record.blocks):
            j = ended.pop((record.tenant, block.hash), None)
            if j is not None:
                prev[i] = j
                break
        if record.blocks:
            ended[(record.tenant, record.blocks[-1].hash)] = i
    return prev


def _chains(records: list[TraceRecord], prev: dict[int, int]) -> list[_Chain]:
    nxt = {j: i for i, j in prev.items()}
    chains = []
    for i in range(len(records)):
        if i in prev:
            continue
        calls = [i]
        while calls[-1] in nxt:
            calls.append(nxt[calls[-1]])
        chains.append(_Chain(calls))
    return chains


def _classify(gap: float, short_s: float, long_s: float) -> int:
    return _SHORT if gap <= short_s else _MEDIUM if gap <= long_s else _LONG


def observed_pauses(records: Iterable[TraceRecord]) -> dict[str, Pauses]:
    """Per call site, the shares of the pauses after its calls (until the call carrying it on)."""
    ordered = sorted(records, key=lambda r: r.ts)
    window = _window()
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for i, j in follow_ups(ordered).items():
        gap = ordered[i].ts - ordered[j].ts
        counts[ordered[j].call_site][_classify(gap, window.short_s, window.long_s)] += 1
    out = {}
    for site, c in counts.items():
        n = sum(c.values())
        out[site] = Pauses(c[_SHORT] / n, c[_MEDIUM] / n, c[_LONG] / n)
    return out


def _private(records: list[TraceRecord], chains: list[_Chain]) -> dict[tuple[str, str], int]:
    """Positions sent by the calls of one chain only, with that chain's index."""
    owner: dict[tuple[str, str], int] = {}
    shared: set[tuple[str, str]] = set()
    for c, chain in enumerate(chains):
        for i in chain.calls:
            for block in records[i].blocks:
                key = (records[i].tenant, block.hash)
                if owner.setdefault(key, c) != c:
                    shared.add(key)
    return {key: c for key, c in owner.items() if key not in shared}


def _tail(
    record: TraceRecord, private: Mapping[tuple[str, str], int], c: int, min_tokens: int
) -> list[tuple[str, int]] | None:
    """The call's private positions that can be cached (hash, tokens), or None when they are not its tail."""
    keys = [(record.tenant, b.hash) for b in record.blocks]
    first = len(keys)
    while first > 0 and private.get(keys[first - 1]) == c:
        first -= 1
    if any(private.get(k) == c for k in keys[:first]):
        return None
    out, cum = [], 0
    for i, block in enumerate(record.blocks):
        cum += block.tokens
        if i >= first and cum >= min_tokens:
            out.append((block.hash, block.tokens))
    return out


@dataclass(frozen=True, slots=True)
class _Step:
    """One call of a chain in private-token coordinates."""

    count: int  # how many private positions the call sends
    prices: Prices
    pauses: Pauses  # the pause after it (unused for the chain's last call)


def _chain_steps(
    records: list[TraceRecord],
    chain: _Chain,
    c: int,
    private: Mapping[tuple[str, str], int],
    pause_after: Callable[[int], Pauses],
) -> tuple[list[int], list[_Step]] | None:
    """The chain's private positions (cumulative token ends) and its calls, or None if not covered.

    ``pause_after(i)``: the distribution of the pause after call ``i`` (its index in ``records``).
    """
    caps = capabilities()
    sizes: list[tuple[str, int]] = []
    steps: list[_Step] = []
    for i in chain.calls:
        record = records[i]
        if tolerates_batch(record):
            return None
        info = caps.model(record.model)
        tail = _tail(record, private, c, info.min_cache_tokens)
        if tail is None or tail[: len(sizes)] != sizes:  # each call carries the last one's on
            return None
        sizes = tail
        steps.append(_Step(len(tail), info.prices, pause_after(i)))
    ends = [0]
    for _, tokens in sizes:
        ends.append(ends[-1] + tokens)
    return ends, steps


@dataclass(frozen=True, slots=True)
class _Terms:
    """One call's charges per private token (micro-USD), with the chances of the pause after it."""

    pauses: Pauses
    premium: float  # a 1h write where 5m would do
    rewrite: float  # a readable block written again at 1h
    again: float  # a lost position written again, at either TTL
    old_loss: float  # the next call cannot read a position whose premium was charged before
    fresh_loss: float  # ... one whose premium step 2 may charge to that very call
    unsure: float  # a fresh position not written at 1h: 5m and maybe wasted, or lost to a quick call
    relost: float  # a lost position not written at 1h: 5m again, or lost to a quick call

    @classmethod
    def of(cls, step: _Step, following: Prices) -> _Terms:
        prices, p = step.prices, step.pauses
        old_loss = following.input - following.cache_read
        fresh_loss = old_loss - (following.cache_write_5m - following.input)
        again = prices.cache_write_5m - prices.input
        return cls(
            pauses=p,
            premium=prices.cache_write_1h - prices.cache_write_5m,
            rewrite=prices.cache_write_1h - prices.input,
            again=again,
            old_loss=old_loss,
            fresh_loss=fresh_loss,
            unsure=min((p.medium + p.long) * again, p.short * fresh_loss),
            relost=min(again, p.short * old_loss),
        )


def _expected_extra(ends: list[int], steps: list[_Step]) -> float:
    """The least expected micro-USD a chain's 1h writes and lost positions cost (see the module docstring).

    ``later[f][cls]`` (then ``now``, one call earlier) is the least expected cost
    from a call on, when the furthest 1h entry ends at private position ``f`` and
    the pause before the call was of class ``cls``, which says how far the call can
    read: the previous call's end, the 1h entry, or nothing.

    A position is *fresh* at a call when that call is the first to send it in its
    run (after a long pause, every position is): the next call may be the one step 2
    charges its write premium to. Any other position had that premium charged
    before, so losing it costs the whole ``input - read``, and writing it again
    costs ``w5m - input`` whatever follows.
    """
    # after the chain's last call nothing follows: no cost, wherever its 1h entry ends
    later: list[list[float]] = [[0.0] * 3 for _ in range(steps[-1].count + 1)]
    for m in range(len(steps) - 2, -1, -1):
        count = steps[m].count
        before = steps[m - 1].count if m > 0 else 0
        terms = _Terms.of(steps[m], steps[m + 1].prices)
        ahead = {
            fresh: [_ahead(ends, count, x, fresh, terms, later) for x in range(count + 1)]
            for fresh in {0, before}
        }
        now: list[list[float]] = [[float("inf")] * 3 for _ in range(before + 1)]
        for f in range(before + 1):
            for cls in (_SHORT, _MEDIUM, _LONG):
                if cls == _LONG and f != 0:
                    continue
                fresh = 0 if cls == _LONG else before
                now[f][cls] = _cheapest(ends, count, before, f, cls, terms, ahead[fresh])
        later = now
    return later[0][_LONG]


def _ahead(ends: list[int], count: int, x: int, fresh: int, terms: _Terms, later: list[list[float]]) -> float:
    """The expected cost of what follows a call that leaves its furthest 1h entry at ``x``.

    ``fresh``: where the positions new in the run at this call start. A pause of 5
    minutes to an hour loses every position past ``x``.
    """
    p = terms.pauses
    lost = terms.fresh_loss * (ends[count] - ends[max(x, fresh)]) + terms.old_loss * max(
        0, ends[fresh] - ends[x]
    )
    return p.short * later[x][_SHORT] + p.medium * (lost + later[x][_MEDIUM]) + p.long * later[0][_LONG]


def _cheapest(
    ends: list[int], count: int, before: int, f: int, cls: int, terms: _Terms, ahead: list[float]
) -> float:
    """The least expected cost from a call on, over where its furthest 1h entry ends (``x >= f``)."""
    reach = before if cls == _SHORT else f if cls == _MEDIUM else 0  # how far the call can read
    fresh = 0 if cls == _LONG else before
    lost = before if cls == _MEDIUM else f  # (f, lost]: sent before, unreadable now

    def rest(x: int) -> float:  # past x: the fresh positions uncertain, the lost ones written again or not
        fresh_left = ends[count] - ends[max(x, reach, fresh)]
        return ahead[x] + terms.unsure * fresh_left + terms.relost * max(0, ends[lost] - ends[max(x, f)])

    best = rest(f)
    for x in range(f + 1, count + 1):
        if x > reach:
            write = terms.premium * (ends[x] - ends[reach]) + terms.again * (ends[min(x, lost)] - ends[f])
        else:
            write = terms.rewrite * (ends[x] - ends[x - 1])
        best = min(best, write + rest(x))
    return best


def online_lower_bound(
    records: Iterable[TraceRecord],
    *,
    pauses: Mapping[str, Pauses] | None = None,
    batch_hit_rate: float = 1.0,
) -> float:
    """A floor in USD on the expected cost of any placement that cannot see the next pause.

    ``pauses``: per call site, the distribution each pause after its calls is drawn
    from (default: the shares the trace shows, :func:`observed_pauses`).
    ``batch_hit_rate`` as for :func:`._bound.lower_bound` (the chains covered here
    send no batches; everything else is floored as there).
    """
    ordered = sorted(records, key=lambda r: r.ts)
    shares = observed_pauses(ordered) if pauses is None else pauses
    quick = Pauses(1.0, 0.0, 0.0)  # a site with no follow-up in the trace: only last calls, never read

    def pause_after(i: int) -> Pauses:
        return shares.get(ordered[i].call_site, quick)

    return _floor(ordered, follow_ups(ordered), pause_after, batch_hit_rate)


def hindsight_lower_bound(records: Iterable[TraceRecord], *, batch_hit_rate: float = 1.0) -> float:
    """A floor in USD on what any placement pays, clairvoyant or not: each pause as the trace has it.

    The same dynamic program as :func:`online_lower_bound`, with the pause after
    each call certain: it is the class the trace shows. A placement that knows
    every pause is then no better informed than the program, so the floor holds
    for it too (docs/savings.md, step 8). It charges what the per-call floor of
    :mod:`._bound` cannot see one call at a time: a call after a pause may skip
    reading a turn (cheaper for that call than the 1h write the read needed), but
    then the calls after it can read that turn only if it is written again, or pay
    for it in full each time.
    """
    ordered = sorted(records, key=lambda r: r.ts)
    window = _window()
    prev = follow_ups(ordered)
    following = {j: i for i, j in prev.items()}
    certain = [Pauses(1.0, 0.0, 0.0), Pauses(0.0, 1.0, 0.0), Pauses(0.0, 0.0, 1.0)]

    def pause_after(i: int) -> Pauses:
        j = following.get(i)
        if j is None:
            return certain[_SHORT]  # the chain's last call: its pause is never used
        return certain[_classify(ordered[j].ts - ordered[i].ts, window.short_s, window.long_s)]

    return _floor(ordered, prev, pause_after, batch_hit_rate)


def _floor(
    ordered: list[TraceRecord],
    prev: dict[int, int],
    pause_after: Callable[[int], Pauses],
    batch_hit_rate: float,
) -> float:
    """The per-call floor without TTL premiums on covered chains' private positions, plus their program.

    ``prev``: :func:`follow_ups` of ``ordered``.
    """
    chains = _chains(ordered, prev)
    private = _private(ordered, chains)
    exempt: set[tuple[str, str]] = set()
    extra = 0.0
    for c, chain in enumerate(chains):
        shaped = _chain_steps(ordered, chain, c, private, pause_after)
        if shaped is None:
            continue
        ends, steps = shaped
        exempt.update(
            (ordered[i].tenant, b.hash)
            for i in chain.calls
            for b in ordered[i].blocks
            if private.get((ordered[i].tenant, b.hash)) == c
        )
        extra += _expected_extra(ends, steps)
    base = sum(floor_shares(ordered, batch_hit_rate=batch_hit_rate, ttl_exempt=frozenset(exempt)).values())
    return base + extra / 1e6
