"""Replay a trace through a marker placement and bill it exactly as the emulator would.

The cache rules are :mod:`engine.providers.anthropic.cache_accounting` (the same
pure function the emulator's cache follows, checked by a parity test), the prices
are the capabilities table. What varies between replays is only the *placement*:
a function that, for one recorded call, says where markers go and whether the
call is sent through the Message Batches API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from engine.plan._trace import TTL, TraceBlock, TraceRecord
from engine.providers.anthropic.cache_accounting import Entry, account, commit
from engine.providers.anthropic.capabilities import Usage, capabilities

__all__ = ["Placement", "Placer", "SimulatedCall", "Totals", "auto_marker", "replay", "summarize"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Markers per position (None: no marker) and whether the call goes to a batch."""

    markers: tuple[TTL | None, ...]
    batch: bool = False


Placer = Callable[[TraceRecord], Placement]


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    record: TraceRecord
    usage: Usage
    cost_usd: float


@dataclass(slots=True)
class Totals:
    """Sums over a set of simulated calls."""

    calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    batch_calls: int = 0
    hit_calls: int = 0
    by_site: dict[str, Totals] = field(default_factory=dict)

    def add(self, call: SimulatedCall) -> None:
        u = call.usage
        self.calls += 1
        self.cost_usd += call.cost_usd
        self.input_tokens += u.input_tokens
        self.cache_write_tokens += u.cache_write_tokens
        self.cache_read_tokens += u.cache_read_tokens
        self.output_tokens += u.output_tokens
        self.batch_calls += int(u.batch)
        self.hit_calls += int(u.cache_read_tokens > 0)

    @property
    def batch_share(self) -> float:
        return self.batch_calls / self.calls if self.calls else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hit_calls / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "cost_usd": round(self.cost_usd, 6),
            "input_tokens": self.input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
            "hit_rate": round(self.hit_rate, 4),
            "batch_share": round(self.batch_share, 4),
        }


def auto_marker(blocks: Sequence[TraceBlock], markers: list[TTL | None], ttl: TTL) -> None:
    """A top-level ``cache_control``: a marker on the last markable block, unless one is there."""
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i].markable:
            if markers[i] is None:
                markers[i] = ttl
            return


def replay(records: Iterable[TraceRecord], placer: Placer) -> list[SimulatedCall]:
    """Bill every record, in time order, with one prompt cache per tenant."""
    caps = capabilities()
    lookback = int(caps.limits["cache_lookback_positions"])
    ttl_s = {k: int(v) for k, v in caps.limits["ttl_seconds"].items()}
    stores: dict[str, dict[bytes, Entry]] = defaultdict(dict)
    out: list[SimulatedCall] = []
    for record in sorted(records, key=lambda r: r.ts):
        placement = placer(record)
        info = caps.model(record.model)
        store = stores[record.tenant]
        hashes = [bytes.fromhex(b.hash) for b in record.blocks]
        now = record.ts
        outcome = account(
            hashes,
            [b.tokens for b in record.blocks],
            placement.markers,
            min_tokens=info.min_cache_tokens,
            lookback=lookback,
            alive=lambda h, s=store, t=now: h in s and s[h].expires > t,  # type: ignore[misc]
        )
        commit(store, hashes, outcome, now, ttl_s)
        usage = Usage(
            input_tokens=outcome.input_tokens,
            cache_write_5m_tokens=outcome.cache_write_5m_tokens,
            cache_write_1h_tokens=outcome.cache_write_1h_tokens,
            cache_read_tokens=outcome.cache_read_tokens,
            output_tokens=record.output_tokens,
            batch=placement.batch,
        )
        cost = info.cost(usage, batch_multiplier=caps.multipliers["batch"])
        out.append(SimulatedCall(record, usage, cost))
    return out


def summarize(calls: Iterable[SimulatedCall]) -> Totals:
    """Totals overall and per call site."""
    total = Totals()
    for call in calls:
        total.add(call)
        site = total.by_site.setdefault(call.record.call_site, Totals())
        site.add(call)
    return total
