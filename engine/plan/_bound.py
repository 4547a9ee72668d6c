"""A provable floor on what any marker placement and batching could pay for a trace.

Every input token of a call is billed one of three ways: plain input (1x the
base price), a cache write (at least 1.25x) or a cache read (0.1x), times the
batch multiplier when the call goes through the Message Batches API. Output is
billed at the output price whatever happens. So, per call, the floor charges:

- *reusable* positions at the read price: position ``i`` is reusable only if an
  earlier call of the same tenant contained the same prefix hash (a read needs an
  entry, an entry is written only by a request that sent that exact prefix), no
  more than the longest TTL (1h) ago (an entry lives at most one TTL past the
  last request that wrote or read it), and the prefix reaches the model's
  minimum cacheable length. Everything up to the last reusable position is
  charged as read (the real read can only be shorter);
- every other input token at the plain input price (nothing is cheaper for
  content no entry can hold);
- the output at the output price;
- the batch multiplier where the call tolerates a batch (its latency is not
  ``interactive``) and its transport takes batches.

And once per prefix position that is ever charged as read: the write premium
(5m write price minus input price, the cheapest premium) times the smallest
batch multiplier of the calls that could have written it. The first write of
that position was billed at the write price by some earlier call, where the
floor above charged at most the input price: the difference is at least that
premium, and no two positions share it.

Nothing here looks at where markers actually sat, so the floor holds for every
placement (docs/savings.md has the argument in full).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.plan._trace import TraceRecord
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["floor_shares", "lower_bound", "tolerates_batch"]


def tolerates_batch(record: TraceRecord) -> bool:
    """Whether the call could have gone through the Message Batches API."""
    caps = capabilities()
    return record.latency != "interactive" and caps.transport(record.transport).batches


@dataclass(slots=True)
class _Seen:
    last: float
    min_factor: float
    premium_paid: bool = False


def _reusable_end(record: TraceRecord, seen: dict[tuple[str, str], _Seen], min_tokens: int) -> int:
    """The last position an earlier call could have left a live, long-enough entry for."""
    horizon = max(capabilities().ttl_seconds(t) for t in ("5m", "1h"))
    cum = 0
    end = -1
    for i, block in enumerate(record.blocks):
        cum += block.tokens
        prior = seen.get((record.tenant, block.hash))
        if prior is None or record.ts - prior.last > horizon:
            break
        if cum >= min_tokens:
            end = i
    return end


def lower_bound(records: Iterable[TraceRecord]) -> float:
    """The floor in USD (see the module docstring for why it is one)."""
    return sum(floor_shares(records).values())


def floor_shares(records: Iterable[TraceRecord]) -> dict[str, float]:
    """The floor split by call site (a write premium counts where the prefix is read)."""
    caps = capabilities()
    batch_mult = caps.multipliers["batch"]
    seen: dict[tuple[str, str], _Seen] = {}
    shares: dict[str, float] = {}
    for record in sorted(records, key=lambda r: r.ts):
        total = 0.0
        p = caps.model(record.model).prices
        factor = batch_mult if tolerates_batch(record) else 1.0
        end = _reusable_end(record, seen, caps.model(record.model).min_cache_tokens)
        micro = record.output_tokens * p.output
        for i, block in enumerate(record.blocks):
            if i <= end:
                micro += block.tokens * p.cache_read
                first = seen[(record.tenant, block.hash)]
                if not first.premium_paid:
                    first.premium_paid = True
                    total += block.tokens * (p.cache_write_5m - p.input) * first.min_factor / 1e6
            else:
                micro += block.tokens * p.input
        total += micro * factor / 1e6
        shares[record.call_site] = shares.get(record.call_site, 0.0) + total
        for block in record.blocks:
            key = (record.tenant, block.hash)
            prior = seen.get(key)
            if prior is None:
                seen[key] = _Seen(record.ts, factor)
            else:
                prior.last = record.ts
                prior.min_factor = min(prior.min_factor, factor)
    return shares
