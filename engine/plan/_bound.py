"""A provable floor on what any marker placement and batching could pay for a trace.

Every input token of a call is billed one of four ways: plain input (1x the base
price), a 5m cache write (1.25x), a 1h cache write (2x) or a cache read (0.1x),
times the batch multiplier when the call goes through the Message Batches API.
Output is billed at the output price whatever happens. A call reads one run of
its prefix, up to the position ``h`` whose entry it found (its *hit*); every
position after ``h`` is billed at least as plain input.

What the trace alone says about ``h`` (docs/savings.md has the proofs):

- *reusable*: position ``i`` can be read only if an earlier call of the same
  tenant sent the same prefix hash no more than 1h (the longest TTL) ago, and
  the prefix reaches the model's minimum cacheable length;
- *write premium*: the first time position ``i`` is read, some earlier call
  wrote it at a write price where the floor charged it as plain input: at least
  the 5m premium (0.25x) once per position;
- *TTL premium*: when the hit's previous sighting is more than 5 minutes old, no
  5m entry can still be alive there (an entry is only ever touched by a call
  that sends its prefix), so the hit's own entry was written at 1h by a call
  that sent the prefix earlier in its run, billing at the 1h price everything
  past what that call read: at least what lies past the most any such call could
  read (the hit's own block always among it), 0.75x more than the 5m premium,
  once per position per run.

- *batch hit rate*: a batch item reads an entry that is there only with the
  chance ``q`` the API grants batches (best effort, 30%-98% in the docs). A read
  needs a marker at or after the position, and a marked item that misses writes
  the span again, at least at the 5m price: that is the item's own write, on top
  of the one-time premium of the write that made the entry (charged as above).
  A call that could be
  batched is floored at the cheaper of the two ways it can go: through a batch
  (half price, reads worth ``q`` of their saving) or direct (full price, reads
  certain). At ``q = 1`` this is the floor that grants every batch read. With a
  hit model that draws each read independently, it is a floor on the expected cost.

- *runs*: an entry lives only while calls that send its prefix come less than
  its TTL apart, so after a pause of more than 1h in a prefix's sightings any
  entry there was written again: the premiums are owed once per *run* of
  sightings (gaps up to 1h), not once per prefix.

A one-time premium shared by many calls is charged to a single call fixed by
the trace (the first call that could read the position, the first call that
could use it as a long-gap hit), so each call's floor is a minimum over its own
``h`` only, and the sum stays below the cost of any placement. Nothing here
looks at where markers actually sat.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from engine.plan._trace import TraceRecord
from engine.providers.anthropic.capabilities import Prices, capabilities

__all__ = ["floor_shares", "lower_bound", "tolerates_batch"]


def tolerates_batch(record: TraceRecord) -> bool:
    """Whether the call could have gone through the Message Batches API."""
    caps = capabilities()
    return record.latency != "interactive" and caps.transport(record.transport).batches


@dataclass(slots=True)
class _Seen:
    """One prefix position of a tenant in its current run of sightings.

    ``reach``: the most tokens of this prefix any of the run's sightings so far
    could have read, capped at the tokens before the position's own block (a call
    that writes an entry here read at most that much of it, so it wrote the rest).
    """

    last: float
    min_factor: float
    reach: int = 0
    write_premium_assigned: bool = False
    ttl_premium_assigned: bool = False


@dataclass(frozen=True, slots=True)
class _Window:
    """How long an entry can live: the short TTL (5m) and the longest one (1h)."""

    short_s: float
    long_s: float


def _window() -> _Window:
    caps = capabilities()
    return _Window(float(caps.ttl_seconds("5m")), float(caps.ttl_seconds("1h")))


def _gaps(record: TraceRecord, seen: dict[tuple[str, str], _Seen], window: _Window) -> list[float]:
    """Per position, seconds since an earlier call sent that prefix; stops at the first one none did."""
    out: list[float] = []
    for block in record.blocks:
        prior = seen.get((record.tenant, block.hash))
        if prior is None or record.ts - prior.last > window.long_s:
            break
        out.append(record.ts - prior.last)
    return out


def _readable(record: TraceRecord, gaps: list[float], min_tokens: int) -> list[float]:
    """``gaps`` cut after the last position that can be a hit (its prefix reaches the minimum)."""
    cum = 0
    end = 0
    for i, block in enumerate(record.blocks[: len(gaps)]):
        cum += block.tokens
        if cum >= min_tokens:
            end = i + 1
    return gaps[:end]


def _call_floor(
    record: TraceRecord,
    seen: dict[tuple[str, str], _Seen],
    prices: Prices,
    factor: float,
    min_tokens: int,
    *,
    read_share: float = 1.0,
    commit: bool = True,
    ttl_exempt: frozenset[tuple[str, str]] = frozenset(),
) -> float:
    """The least this call can cost (micro-USD), minimised over its hit, premiums it is charged included.

    ``read_share`` is the chance a read the call attempts succeeds (1 for a direct call,
    the batch hit rate for a batch item; a miss writes at 5m). Marks the
    one-time premiums this call carries as assigned when ``commit`` (the trace fixes
    which call carries them, whatever ``h`` the minimum picks, whichever way it goes).
    """
    window = _window()
    gaps = _readable(record, _gaps(record, seen, window), min_tokens)
    plain = sum(b.tokens for b in record.blocks) * prices.input * factor
    best = plain  # h = -1: nothing read
    cost = plain
    cum = 0
    assigned: set[tuple[str, str]] = set()
    for i, gap in enumerate(gaps):
        block = record.blocks[i]
        prior = seen[(record.tenant, block.hash)]
        # a read attempted in a batch: read with chance read_share, else the marker writes (5m at least)
        miss = (prices.cache_write_5m - prices.input) * (1.0 - read_share)
        cost -= block.tokens * ((prices.input - prices.cache_read) * read_share - miss) * factor
        if not prior.write_premium_assigned:
            assigned.add(("write", block.hash))
            cost += block.tokens * (prices.cache_write_5m - prices.input) * prior.min_factor
        cum += block.tokens
        if cum < min_tokens:
            continue
        hit = cost
        # a hit among the positions the online program follows owes its 1h write there, not here
        if gap > window.short_s and (record.tenant, block.hash) not in ttl_exempt:
            span = _creation_run(record, i, cum - prior.reach, seen)
            assigned.update(("ttl", digest) for digest, _tokens in span)
            premium = prices.cache_write_1h - prices.cache_write_5m
            hit += sum(tokens for _digest, tokens in span) * premium * prior.min_factor
        best = min(best, hit)
    if commit:
        for kind, digest in assigned:
            prior = seen[(record.tenant, digest)]
            if kind == "write":
                prior.write_premium_assigned = True
            else:
                prior.ttl_premium_assigned = True
    return best + record.output_tokens * prices.output * factor


def _creation_run(
    record: TraceRecord,
    hit: int,
    length: int,
    seen: dict[tuple[str, str], _Seen],
) -> list[tuple[str, int]]:
    """The positions a 1h entry at ``hit`` was surely written over that no TTL premium paid for yet.

    The call that wrote it sent the same prefix earlier in the run and read at most
    its ``reach``, so it billed at least the last ``length`` tokens up to the hit at
    the 1h price (the hit's own block always among them). Returns their prefix hashes
    and tokens, those already charged in this run left out.
    """
    out: list[tuple[str, int]] = []
    for block in reversed(record.blocks[: hit + 1]):
        if length <= 0:
            break
        length -= block.tokens
        prior = seen[(record.tenant, block.hash)]
        if not prior.ttl_premium_assigned:
            out.append((block.hash, block.tokens))
    return out


def lower_bound(records: Iterable[TraceRecord], *, batch_hit_rate: float = 1.0) -> float:
    """The floor in USD when batch items read with chance ``batch_hit_rate`` (see the module docstring)."""
    return sum(floor_shares(records, batch_hit_rate=batch_hit_rate).values())


def floor_shares(
    records: Iterable[TraceRecord],
    *,
    batch_hit_rate: float = 1.0,
    ttl_exempt: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, float]:
    """The floor split by call site (a premium counts at the call that carries it).

    ``ttl_exempt``: ``(tenant, prefix hash)`` positions whose reads carry no TTL
    premium here, over their whole creation run, because :mod:`._online` charges
    the 1h writes they need another way.
    """
    caps = capabilities()
    batch_mult = caps.multipliers["batch"]
    overhead = int(caps.limits.get("request_overhead_tokens", 0))
    seen: dict[tuple[str, str], _Seen] = {}
    shares: dict[str, float] = {}
    window = _window()
    for record in sorted(records, key=lambda r: r.ts):
        info = caps.model(record.model)
        factor = batch_mult if tolerates_batch(record) else 1.0
        floor = functools.partial(
            _call_floor, record, seen, info.prices, min_tokens=info.min_cache_tokens, ttl_exempt=ttl_exempt
        )
        plain = overhead * info.prices.input  # the per-request overhead is never cached
        cheaper: float | None = None
        if factor != 1.0 and batch_hit_rate < 1.0:  # a batch that reads by chance, or direct
            batched = floor(factor, read_share=batch_hit_rate, commit=False)
            cheaper = min(batched + plain * factor, floor(1.0, commit=False) + plain)
        micro = floor(factor) + plain * factor  # last: it assigns the premiums this call carries
        if cheaper is not None:
            micro = cheaper
        shares[record.call_site] = shares.get(record.call_site, 0.0) + micro / 1e6
        reads = len(_readable(record, _gaps(record, seen, window), info.min_cache_tokens))
        readable = sum(b.tokens for b in record.blocks[:reads])
        before = 0
        for block in record.blocks:
            key = (record.tenant, block.hash)
            prior = seen.get(key)
            reach = min(readable, before)  # what this call could read of the prefix, its own block excluded
            if prior is None or record.ts - prior.last > window.long_s:
                seen[key] = _Seen(record.ts, factor, reach)  # a new run: no entry outlived the pause
            else:
                prior.last = record.ts
                prior.min_factor = min(prior.min_factor, factor)
                prior.reach = max(prior.reach, reach)
            before += block.tokens
    return shares
