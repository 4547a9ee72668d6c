"""The lower bound is a floor: no placement of markers, TTLs or batching pays less.

And it is not loose for nothing: on tiny traces the best of an enumerated set of
valid placements is never below it, and on the "carrier" trace below it is
reached exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.compile import compile_policy
from engine.plan import (
    Placement,
    TraceRecord,
    lower_bound,
    policy_placer,
    record_from_payload,
    replay,
    summarize,
    tolerates_batch,
)
from engine.plan._bound import lower_bound as per_call_floor
from engine.policy import load_policy
from engine.providers.anthropic.cache_accounting import TTL, Entry, account, commit, request_overhead
from engine.providers.anthropic.capabilities import Usage, capabilities

TEXTS = [f"w{i} " * n for i, n in enumerate((300, 900, 1500, 40, 2500, 700, 5))]
GAPS = [0.0, 10.0, 200.0, 299.0, 300.0, 301.0, 600.0, 3000.0, 3600.0, 4000.0]
MODEL = "claude-sonnet-4-5"
POLICY = Path(__file__).resolve().parents[2] / "policies" / "examples" / "pipeshub-savings.yaml"


def _record(system: list[int], turns: list[int], ts: float, latency: str = "interactive") -> TraceRecord:
    params: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": TEXTS[i]} for i in turns]}],
    }
    if system:
        params["system"] = [{"type": "text", "text": TEXTS[i]} for i in system]
    return record_from_payload(params, ts=ts, call_site="s", output_tokens=20, latency=latency)  # type: ignore[arg-type]


@st.composite
def traffic(draw: st.DrawFn, max_calls: int = 10, max_turns: int = 8) -> list[TraceRecord]:
    out = []
    now = 0.0
    for _ in range(draw(st.integers(1, max_calls))):
        system = draw(st.lists(st.sampled_from([0, 1, 2]), max_size=2))
        turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=1, max_size=max_turns))
        now += draw(st.sampled_from(GAPS))
        latency = draw(st.sampled_from(["interactive", "awaitable"]))
        out.append(_record(system, turns, now, latency))
    return out


@st.composite
def conversation(draw: st.DrawFn) -> list[TraceRecord]:
    """A conversation growing over 2-3 calls (short and long pauses), small blocks among big ones."""
    system = draw(st.lists(st.sampled_from([0, 2, 4]), max_size=1))
    turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=2, max_size=5 - len(system)))
    lengths = sorted(draw(st.lists(st.integers(1, len(turns)), min_size=2, max_size=3)))
    out, now = [], 0.0
    for n in lengths:
        out.append(_record(system, turns[:n], now))
        now += draw(st.sampled_from([10.0, 200.0, 301.0, 1000.0, 3000.0, 4000.0]))
    return out


def _random_placer(seed: int) -> Any:
    """Up to 4 markers anywhere, each 1h or 5m (1h first, as the API requires), random batching."""
    rng = random.Random(seed)

    def place(record: TraceRecord) -> Placement:
        n = len(record.blocks)
        chosen = sorted(rng.sample(range(n), k=min(n, rng.randint(0, 4))))
        ones = rng.randint(0, len(chosen))
        markers: list[Any] = [None] * n
        for k, i in enumerate(chosen):
            markers[i] = "1h" if k < ones else "5m"
        return Placement(tuple(markers), batch=tolerates_batch(record) and rng.random() < 0.7)

    return place


@settings(max_examples=300, deadline=None)
@given(traffic(), st.integers(0, 10_000))
def test_no_placement_pays_less_than_the_floor(records: list[TraceRecord], seed: int) -> None:
    floor = lower_bound(records)
    assert summarize(replay(records, _random_placer(seed))).cost_usd >= floor - 1e-12


@st.composite
def conversations(draw: st.DrawFn) -> list[TraceRecord]:
    """One or two conversations over a shared system prompt, 3-7 calls each, growing or
    repeating, with pauses on both sides of 5 minutes and of an hour."""
    system = draw(st.lists(st.sampled_from([0, 1, 2, 4]), max_size=1))
    out = []
    for _ in range(draw(st.integers(1, 2))):
        turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=3, max_size=7))
        lengths = sorted(draw(st.lists(st.integers(1, len(turns)), min_size=3, max_size=7)))
        now = draw(st.sampled_from([0.0, 50.0, 400.0]))
        for n in lengths:
            out.append(replace(_record(system, turns[:n], now), call_site="chat.agent.stream"))
            now += draw(st.sampled_from([5.0, 200.0, 299.0, 301.0, 1000.0, 3599.0, 3601.0, 5000.0]))
    return out


def _last_marked(*ttls: TTL) -> Any:
    """The last blocks marked with ``ttls`` (the last block gets the last TTL)."""

    def place(record: TraceRecord) -> Placement:
        markers: list[TTL | None] = [None] * len(record.blocks)
        for back, ttl in enumerate(reversed(ttls[-len(markers) :]), start=1):
            markers[-back] = ttl
        return Placement(tuple(markers), batch=False)

    return place


@settings(max_examples=60, deadline=None)
@given(conversations())
def test_no_sensible_placement_pays_less_than_the_floor_on_longer_conversations(
    records: list[TraceRecord],
) -> None:
    """Random placements are weak attackers; the shipped policy and the placements a careful
    user writes by hand (the newest turn at 5m or 1h, the history at 1h) are strong ones."""
    floor = lower_bound(records)
    policy = policy_placer(compile_policy(load_policy(str(POLICY))))
    for placer in (_last_marked("5m"), _last_marked("1h"), _last_marked("1h", "5m"), policy):
        assert summarize(replay(records, placer)).cost_usd >= floor - 1e-12


def _marker_sets(n: int, most: int = 2) -> Iterator[tuple[TTL | None, ...]]:
    """Every valid marker set with at most ``most`` markers: any positions, 1h ones before 5m ones."""
    yield (None,) * n
    for k in range(1, most + 1):
        for chosen in combinations(range(n), k):
            for ones in range(k + 1):
                markers: list[TTL | None] = [None] * n
                for j, i in enumerate(chosen):
                    markers[i] = "1h" if j < ones else "5m"
                yield tuple(markers)


def _try(record: TraceRecord, markers: tuple[TTL | None, ...], store: dict[bytes, Entry]) -> tuple[Any, Any]:
    """Bill one call with these markers against ``store``: its outcome, and the cache after it."""
    caps = capabilities()
    info = caps.model(record.model)
    hashes = [bytes.fromhex(b.hash) for b in record.blocks]
    outcome = account(
        hashes,
        [b.tokens for b in record.blocks],
        markers,
        min_tokens=info.min_cache_tokens,
        lookback=int(caps.limits["cache_lookback_positions"]),
        alive=lambda h: h in store and store[h].expires > record.ts,
    )
    after = dict(store)
    commit(after, hashes, outcome, record.ts, {k: int(v) for k, v in caps.limits["ttl_seconds"].items()})
    return outcome, after


def _price(record: TraceRecord, outcome: Any, batch: bool = False) -> float:
    caps = capabilities()
    usage = Usage(
        outcome.input_tokens,
        outcome.cache_write_5m_tokens,
        outcome.cache_write_1h_tokens,
        outcome.cache_read_tokens,
        record.output_tokens,
        batch,
    )
    return caps.model(record.model).cost(usage, batch_multiplier=caps.multipliers["batch"])


def _best(records: list[TraceRecord], store: dict[bytes, Entry] | None = None) -> float:
    """The cheapest of every combination of enumerated marker sets and batch choices, call by call."""
    if not records:
        return 0.0
    store = store or {}
    record, rest = records[0], records[1:]
    best = float("inf")
    for markers in _marker_sets(len(record.blocks)):
        outcome, after = _try(record, markers, store)
        later = _best(rest, after)
        for batch in {False, tolerates_batch(record)}:
            best = min(best, _price(record, outcome, batch) + later)
    return best


@settings(max_examples=150, deadline=None)
@given(st.one_of(traffic(max_calls=3, max_turns=2), conversation()))
def test_the_best_enumerated_placement_never_pays_less_than_the_floor(records: list[TraceRecord]) -> None:
    assert _best(sorted(records, key=lambda r: r.ts)) >= lower_bound(records) - 1e-12


def _carrier_trace() -> list[TraceRecord]:
    """Two quick turns, then a 1,000 s pause. The second turn starts with a 5-token block."""
    return [
        _record([4], [2], 0.0),
        _record([4], [2, 6, 3], 100.0),
        _record([4], [2, 6, 3, 3], 1100.0),
    ]


def test_a_long_pause_costs_a_1h_write_but_only_of_the_cheapest_carrier() -> None:
    records = _carrier_trace()
    p = capabilities().model(MODEL).prices
    # 5m write of system+first turn; next call reads it and writes the 5-token block at 1h;
    # after the pause, the 1h entry at that block is still alive and read.
    carrier = [(None, "5m"), (None, None, "1h", None), (None, None, "1h", None, None)]
    pos = iter(carrier)
    paid = summarize(replay(records, lambda r: Placement(next(pos)))).cost_usd  # type: ignore[arg-type]
    floor = lower_bound(records)
    assert abs(paid - floor) < 1e-12  # the floor is reached: it is tight here
    assert _best(records) >= floor - 1e-12
    # Charging the pause's 1h premium on every span read after it (system, first turn)
    # would claim more than this placement pays: that would not be a floor.
    head = records[0].input_tokens
    assert floor + head * (p.cache_write_1h - p.cache_write_5m) / 1e6 > paid


def test_a_conversation_resumed_after_an_hour_then_paused_owes_1h_on_all_it_wrote_again() -> None:
    """The resumed call can read nothing (every entry is gone), so the 1h entry the call after
    the next pause reads was written at 1h from the start of the prompt, not only on its last
    block. The cheapest placement pays exactly the floor."""
    records = [_record([4], [2], 0.0), _record([4], [2, 3], 4000.0), _record([4], [2, 3, 6], 5000.0)]
    assert abs(_best(records) - lower_bound(records)) < 1e-12


def test_a_1h_entry_is_charged_from_what_its_likeliest_writer_could_read() -> None:
    """After a pause of more than 5 minutes the entry read is a 1h one, and whoever wrote it
    wrote at 1h everything past what it could read. The floor may not assume the writer was
    the sighting that could read the least: here the second call reads the first one's 5m
    entry and writes only the 4-token block after it at 1h, which the third call reads."""
    records = [_record([4], [2, 6], t) for t in (0.0, 10.0, 1010.0)]
    floor, best = lower_bound(records), _best(records)
    p = capabilities().model(MODEL).prices
    assert records[0].blocks[-1].tokens == 4
    assert floor <= best <= floor + 4 * (p.input - p.cache_read) / 1e6 + 1e-12


def test_the_floor_counts_reuse_at_the_read_price_and_batches_where_tolerated() -> None:
    params = {
        "model": MODEL,
        "system": TEXTS[2],
        "messages": [{"role": "user", "content": "hi"}],
    }
    first = record_from_payload(params, ts=0.0, call_site="s", output_tokens=0)
    other = {**params, "messages": [{"role": "user", "content": "a different question"}]}
    again = record_from_payload(other, ts=10.0, call_site="s", output_tokens=0)
    overhead = request_overhead()  # fixed per request, never cached
    tokens = first.input_tokens + overhead
    system_tokens = first.blocks[0].tokens
    one = lower_bound([first])
    assert one == tokens * 3 / 1e6  # nothing reusable: plain input
    two = lower_bound([first, again])
    # second call: system read (0.3), the rest plain; plus the 5m write premium once (0.75)
    rest = again.input_tokens + overhead - system_tokens
    expected = tokens * 3 + system_tokens * 0.3 + rest * 3 + system_tokens * 0.75
    assert abs(two - expected / 1e6) < 1e-12
    late = replace(first, ts=10_000.0)
    assert lower_bound([first, late]) == 2 * one  # past the longest TTL nothing can be read
    tolerant = replace(first, latency="awaitable")
    assert lower_bound([tolerant]) == one * 0.5


def test_a_read_after_a_pause_over_5_minutes_carries_the_1h_premium_once() -> None:
    params = {"model": MODEL, "system": TEXTS[2], "messages": [{"role": "user", "content": "hi"}]}
    calls = [record_from_payload(params, ts=t, call_site="s", output_tokens=0) for t in (0.0, 1000.0, 2000.0)]
    short = [replace(c, ts=c.ts / 10) for c in calls]  # 100 s apart: 5m entries would do
    extra = per_call_floor(calls) - per_call_floor(short)
    # After 1,000 s the entry read must be a 1h one, written by the first call, which
    # could read none of it: every token up to the hit was written at 1h, not only the
    # hit's own block. Reading then costs the second call more than plain input (a
    # read 0.3, the write premium 0.75, the 1h premium 2.25, against 3), so the per-call
    # floor charges it plain input; the third call reuses the entry.
    tokens = calls[0].input_tokens
    assert abs(extra - tokens * (3.0 - 0.3 - 0.75) / 1e6) < 1e-12
    # Followed call by call, the conversation shows what no single call can: if the
    # second call skips the read, the third can read the prompt only if it was written
    # again. The hindsight floor charges that, and the cheapest placement (1h on the
    # first call, read twice) pays exactly what it says.
    assert per_call_floor(calls) < lower_bound(calls)
    assert abs(lower_bound(calls) - _best(calls)) < 1e-12
    assert lower_bound(short) == per_call_floor(short)


def test_a_conversation_whose_shared_head_is_below_the_minimum_is_floored_below_its_best() -> None:
    """Two calls at once share a system prompt too short to cache alone; the second goes on
    after 301 s. Reading it back then takes a 1h entry at the conversation's own turn,
    whose creation run covers the shared system prompt too. The hindsight floor follows
    that turn call by call and may find losing it cheaper than its 1h write; charging the
    system prompt's share of the 1h premium as well would claim a write that never
    happens (it put the floor above the cheapest placement: 11,965.5 against 11,763 µUSD)."""
    records = [_record([1], [0], 0.0), _record([1], [1], 0.0), _record([1], [1], 301.0)]
    assert lower_bound(records) <= _best(records) + 1e-12


def test_after_a_pause_over_an_hour_the_write_premium_is_owed_again() -> None:
    """No entry outlives an hour without its prefix being sent: what is read after such a
    pause was written again after it, and the floor charges that write's premium (a run of
    sightings owes its own), which the cheapest placement pays exactly."""
    records = [_record([4], [2], t) for t in (0.0, 100.0, 4100.0, 4200.0)]
    floor = lower_bound(records)
    assert abs(_best(records) - floor) < 1e-12
    assert abs(floor - 2 * lower_bound(records[:2])) < 1e-12  # two runs, each owing its premium


def test_at_a_batch_hit_rate_the_floor_is_the_cheaper_of_an_uncertain_batch_read_and_a_sure_direct_one() -> (
    None
):
    """Batch items read only by best effort: with a shared prefix that is most of the request,
    a direct call's certain read can beat the batch discount, and the floor must allow for it."""
    params = {"model": MODEL, "system": TEXTS[4], "messages": [{"role": "user", "content": "doc"}]}
    first = record_from_payload(params, ts=0.0, call_site="s", output_tokens=10, latency="awaitable")
    other = {**params, "messages": [{"role": "user", "content": "another doc"}]}
    second = record_from_payload(other, ts=30.0, call_site="s", output_tokens=10, latency="awaitable")
    p = capabilities().model(MODEL).prices
    overhead = request_overhead()
    shared = first.blocks[0].tokens
    rest = second.input_tokens - shared
    head = (first.input_tokens + overhead) * p.input * 0.5 + 10 * p.output * 0.5  # the first: plain, batched
    premium = shared * (p.cache_write_5m - p.input) * 0.5  # the first write, charged at the reader
    batched_plain = (second.input_tokens + overhead) * p.input * 0.5 + 10 * p.output * 0.5
    direct_read = shared * p.cache_read + (rest + overhead) * p.input + 10 * p.output + premium
    assert lower_bound([first, second], batch_hit_rate=0.0) * 1e6 == pytest.approx(
        head + min(batched_plain, direct_read)
    )
    assert direct_read < batched_plain  # here the certain read wins
    granted = (
        head + shared * p.cache_read * 0.5 + (rest + overhead) * p.input * 0.5 + 10 * p.output * 0.5 + premium
    )
    assert lower_bound([first, second]) * 1e6 == pytest.approx(granted)
    assert lower_bound([first, second], batch_hit_rate=1.0) == lower_bound([first, second])
    # at 50% a batch item that tries to read pays the read half the time and a 5m write otherwise
    tried = (
        shared * (0.5 * p.cache_read + 0.5 * p.cache_write_5m) * 0.5
        + (rest + overhead) * p.input * 0.5
        + 10 * p.output * 0.5
        + premium
    )
    assert lower_bound([first, second], batch_hit_rate=0.5) * 1e6 == pytest.approx(
        head + min(batched_plain, direct_read, tried)
    )


@settings(max_examples=60, deadline=None)
@given(traffic(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_a_lower_batch_hit_rate_never_lowers_the_floor(
    records: list[TraceRecord], a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert lower_bound(records, batch_hit_rate=low) >= lower_bound(records, batch_hit_rate=high) - 1e-12
