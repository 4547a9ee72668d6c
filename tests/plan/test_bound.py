"""The lower bound is a floor: no placement of markers, no batching choice pays less."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.plan import (
    Placement,
    TraceRecord,
    lower_bound,
    record_from_payload,
    replay,
    summarize,
    tolerates_batch,
)

TEXTS = [f"w{i} " * n for i, n in enumerate((300, 900, 1500, 40, 2500, 700, 5))]


@st.composite
def traffic(draw: st.DrawFn) -> list[TraceRecord]:
    out = []
    now = 0.0
    for _ in range(draw(st.integers(1, 10))):
        system = [
            {"type": "text", "text": TEXTS[i]} for i in draw(st.lists(st.sampled_from([0, 1, 2]), max_size=2))
        ]
        turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=1, max_size=8))
        params: dict[str, Any] = {
            "model": "claude-sonnet-4-5",
            "messages": [{"role": "user", "content": [{"type": "text", "text": TEXTS[i]} for i in turns]}],
        }
        if system:
            params["system"] = system
        now += draw(st.sampled_from([0.0, 10.0, 301.0, 3000.0, 4000.0]))
        latency = draw(st.sampled_from(["interactive", "awaitable"]))
        out.append(record_from_payload(params, ts=now, call_site="s", output_tokens=20, latency=latency))
    return out


def _random_placer(seed: int) -> Any:
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


@settings(max_examples=150, deadline=None)
@given(traffic(), st.integers(0, 10_000))
def test_no_placement_pays_less_than_the_floor(records: list[TraceRecord], seed: int) -> None:
    floor = lower_bound(records)
    assert summarize(replay(records, _random_placer(seed))).cost_usd >= floor - 1e-12


def test_the_floor_counts_reuse_at_the_read_price_and_batches_where_tolerated() -> None:
    params = {
        "model": "claude-sonnet-4-5",
        "system": TEXTS[2],
        "messages": [{"role": "user", "content": "hi"}],
    }
    first = record_from_payload(params, ts=0.0, call_site="s", output_tokens=0)
    other = {**params, "messages": [{"role": "user", "content": "a different question"}]}
    again = record_from_payload(other, ts=10.0, call_site="s", output_tokens=0)
    tokens = first.input_tokens
    system_tokens = first.blocks[0].tokens
    one = lower_bound([first])
    assert one == tokens * 3 / 1e6  # nothing reusable: plain input
    two = lower_bound([first, again])
    # second call: system read (0.3), the rest plain; plus the 5m write premium once (0.75)
    assert (
        abs(
            two
            - (
                tokens * 3
                + system_tokens * 0.3
                + (again.input_tokens - system_tokens) * 3
                + system_tokens * 0.75
            )
            / 1e6
        )
        < 1e-12
    )
    late = replace(first, ts=10_000.0)
    assert lower_bound([first, late]) == 2 * one  # past the longest TTL nothing can be read
    tolerant = replace(first, latency="awaitable")
    assert lower_bound([tolerant]) == one * 0.5
