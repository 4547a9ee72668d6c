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
from functools import partial
from typing import Any, Protocol, runtime_checkable

from engine.plan._trace import TTL, TraceBlock, TraceRecord, billed
from engine.providers.anthropic.cache_accounting import Entry, account, commit
from engine.providers.anthropic.capabilities import Usage, capabilities

__all__ = [
    "DEFAULT_BATCH_HIT_RATE",
    "Learner",
    "Placement",
    "Placer",
    "SimulatedCall",
    "Totals",
    "auto_marker",
    "observed_batch_hit_rate",
    "replay",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class Placement:
    """Markers per position (None: no marker) and whether the call goes to a batch.

    ``pool`` is the batch's ``(maxRequests, maxWait seconds)`` for a pooled call: a
    replay of calls that carry no recorded batch id forms batches the way the pool does.
    """

    markers: tuple[TTL | None, ...]
    batch: bool = False
    pool: tuple[int, float] | None = None


Placer = Callable[[TraceRecord], Placement]


@runtime_checkable
class Learner(Protocol):
    """A placer that learns, as the engine does, from what its batch items read.

    :func:`replay` reports each batch item that carried a marker: its call site, the
    chance it read (1 or 0 when the record says, else the expectation) and when the
    engine would have seen it (when the item's answer came back).
    """

    def observe(self, call_site: str, hit: float, at: float) -> None: ...


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


#: The documented range of cache hits inside batches is 30%-98%; its middle is the default.
DEFAULT_BATCH_HIT_RATE = 0.64


class _Batches:
    """Which batch (and wave) each batch-routed call of a replay runs in.

    A call with a recorded batch id runs in that batch. Otherwise batches form as a
    pool forms them: per tenant, a batch takes calls until it holds ``maxRequests``
    or ``maxWait`` has passed since its first. Items of one batch start together in
    waves of ``wave`` items: an entry one of them writes is readable only by later waves.
    """

    def __init__(self, wave: int) -> None:
        self.wave = wave
        self._open: dict[str, tuple[str, float, int]] = {}
        self._sizes: dict[str, int] = defaultdict(int)
        self._count = 0

    def place(self, record: TraceRecord, placement: Placement) -> tuple[str, int, float]:
        """The call's batch, its wave in it, and when its answer comes back.

        A recorded item's answer came back when the log says; a pooled one's is taken
        as its batch's ``maxWait`` after the batch opened (when a pool sends at the latest).
        """
        rec = record.recorded or {}
        if rec.get("batch_id"):
            key = str(rec["batch_id"])
            answered = float(rec.get("answered_ts") or record.ts)
        else:
            max_requests, max_wait = placement.pool or (100, 0.0)
            current = self._open.get(record.tenant)
            if current is None or record.ts - current[1] > max_wait or current[2] >= max_requests:
                self._count += 1
                current = (f"replay-{self._count}", record.ts, 0)
            key = current[0]
            answered = current[1] + max_wait
            self._open[record.tenant] = (key, current[1], current[2] + 1)
        position = self._sizes[key]
        self._sizes[key] += 1
        return key, position // self.wave, answered


def replay(
    records: Iterable[TraceRecord],
    placer: Placer,
    *,
    batch_hit_rate: float = DEFAULT_BATCH_HIT_RATE,
    draws: bool = True,
) -> list[SimulatedCall]:
    """Bill every record, in time order, with one prompt cache per tenant.

    A batch item reads an entry only if it was written before its wave started, and
    then only with chance ``batch_hit_rate`` (the emulator's and the API's best-effort
    hits inside batches): its cost is the expectation over reading and not reading.
    Where the record says whether the item read (a decision log's batch item that
    carried a marker), that is its draw instead (unless ``draws`` is False). A
    :class:`Learner` placer is told each marked item's draw, as the engine learns
    its per-site rate from them.
    """
    caps = capabilities()
    lookback = int(caps.limits["cache_lookback_positions"])
    ttl_s = {k: int(v) for k, v in caps.limits["ttl_seconds"].items()}
    stores: dict[str, dict[bytes, Entry]] = defaultdict(dict)
    writers: dict[bytes, tuple[str, int]] = {}
    batches = _Batches(int(caps.limits.get("batch_wave_size", 100)))
    out: list[SimulatedCall] = []
    for record in _in_order(records):
        if not billed(record):  # answered from the journal: no request, no cost, no cache effect
            out.append(SimulatedCall(record, Usage(), 0.0))
            continue
        placement = placer(record)
        info = caps.model(record.model)
        store = stores[record.tenant]
        hashes = [bytes.fromhex(b.hash) for b in record.blocks]
        now = record.ts
        where = batches.place(record, placement) if placement.batch else None

        def alive(h: bytes, s: dict[bytes, Entry] = store, t: float = now, w: Any = where) -> bool:
            if h not in s or s[h].expires <= t:
                return False
            writer = writers.get(h)
            return w is None or writer is None or writer[0] != w[0] or writer[1] < w[1]

        bill = partial(
            account,
            hashes,
            [b.tokens for b in record.blocks],
            placement.markers,
            min_tokens=info.min_cache_tokens,
            lookback=lookback,
        )
        outcome = bill(alive=alive)
        cost = info.cost(_usage(outcome, record, placement), batch_multiplier=caps.multipliers["batch"])
        if where is not None:
            reads = _draw(record, batch_hit_rate) if draws else batch_hit_rate
            if outcome.hit >= 0:
                cold = bill(alive=_never)
                cold_cost = info.cost(
                    _usage(cold, record, placement), batch_multiplier=caps.multipliers["batch"]
                )
                cost = reads * cost + (1 - reads) * cold_cost
                _teach(placer, record, placement, reads, where[2])
                if reads < 0.5:
                    outcome = cold
            elif _recorded_draw(record) is not None:
                _teach(placer, record, placement, reads, where[2])
        readable_before = {hashes[pos]: alive(hashes[pos]) for pos, _ttl in outcome.writes}
        commit(store, hashes, outcome, now, ttl_s)
        for pos, _ttl in outcome.writes:
            if where is None:
                writers.pop(hashes[pos], None)
            elif not readable_before[hashes[pos]]:
                writers[hashes[pos]] = where[:2]  # new to this batch: readable from its next wave
        out.append(SimulatedCall(record, _usage(outcome, record, placement), cost))
    return out


def _in_order(records: Iterable[TraceRecord]) -> list[TraceRecord]:
    """Records in the order their requests reached the API.

    A call's record is stamped when the call started; a batch item reached the API
    only when its batch ran, after the pool closed (and after any pre-warm sent for
    it). A recorded batch therefore runs just before its first answer came back.
    """
    listed = list(records)
    runs: dict[str, float] = {}
    for r in listed:
        rec = r.recorded or {}
        if rec.get("batch_id") and rec.get("answered_ts") is not None:
            key = str(rec["batch_id"])
            runs[key] = min(runs.get(key, float("inf")), float(rec["answered_ts"]))

    def when(r: TraceRecord) -> float:
        key = str((r.recorded or {}).get("batch_id") or "")
        return max(r.ts, runs[key] - 1e-3) if key in runs else r.ts

    return sorted(listed, key=when)


def _never(_digest: bytes) -> bool:
    return False


def _teach(placer: Placer, record: TraceRecord, placement: Placement, reads: float, at: float) -> None:
    """Tell a learning placer what a marked batch item read, as the engine learns it.

    Only items with a recorded draw or something to read are told: a cold batch's
    first wave says nothing about the hit model (the engine pre-warms what it would miss).
    """
    if isinstance(placer, Learner) and any(m is not None for m in placement.markers):
        placer.observe(record.call_site, reads, at)


def _recorded_draw(record: TraceRecord) -> bool | None:
    reads = (record.recorded or {}).get("reads")
    return None if reads is None else bool(reads)


def _draw(record: TraceRecord, batch_hit_rate: float) -> float:
    """The chance this batch item reads what is available to it: its recorded draw, else the rate."""
    recorded = _recorded_draw(record)
    return batch_hit_rate if recorded is None else float(recorded)


def _usage(outcome: Any, record: TraceRecord, placement: Placement) -> Usage:
    return Usage(
        input_tokens=outcome.input_tokens,
        cache_write_5m_tokens=outcome.cache_write_5m_tokens,
        cache_write_1h_tokens=outcome.cache_write_1h_tokens,
        cache_read_tokens=outcome.cache_read_tokens,
        output_tokens=record.output_tokens,
        batch=placement.batch,
    )


def observed_batch_hit_rate(records: Iterable[TraceRecord]) -> float | None:
    """The share of recorded batch items that read, among those that read or wrote (None: no data)."""
    reads = tries = 0
    for record in records:
        usage = (record.recorded or {}).get("usage") or {}
        if usage.get("service_tier") != "batch":
            continue
        read = int(usage.get("cache_read_input_tokens") or 0)
        wrote = int(usage.get("cache_creation_input_tokens") or 0)
        if read or wrote:
            tries += 1
            reads += int(read > 0)
    return reads / tries if tries else None


def summarize(calls: Iterable[SimulatedCall]) -> Totals:
    """Totals overall and per call site."""
    total = Totals()
    for call in calls:
        total.add(call)
        site = total.by_site.setdefault(call.record.call_site, Totals())
        site.add(call)
    return total
