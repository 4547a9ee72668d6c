"""The planner bills exactly like the emulator: same reads, writes and plain input per request.

Random request sequences (shared prefixes, markers of both TTLs, gaps around the
TTLs) go once through the emulator's own ``PromptCache`` and once through the
planner (request -> trace record -> replay with the caller's markers).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.emulator.cache import PromptCache
from engine.emulator.validate import prepare
from engine.plan import caller_placer, record_from_payload, replay
from engine.providers.anthropic.capabilities import capabilities

TEXTS = [f"w{i} " * n for i, n in enumerate((300, 900, 1500, 40, 2500, 700, 5, 12))]


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], float]:
    system = [
        {"type": "text", "text": TEXTS[i]}
        for i in draw(st.lists(st.sampled_from([0, 1, 2]), min_size=0, max_size=2))
    ]
    turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=1, max_size=30))
    messages = [
        {"role": "user" if k % 2 == 0 else "assistant", "content": [{"type": "text", "text": TEXTS[i]}]}
        for k, i in enumerate(turns)
    ]
    if messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": [{"type": "text", "text": "next"}]})
    slots = [b for b in system] + [m["content"][0] for m in messages]
    chosen = sorted(draw(st.sets(st.integers(0, len(slots) - 1), max_size=4)))
    n_1h = draw(st.integers(0, len(chosen)))
    for k, idx in enumerate(chosen):
        slots[idx]["cache_control"] = {"type": "ephemeral", "ttl": "1h" if k < n_1h else "5m"}
    params: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": messages}
    if system:
        params["system"] = system
    gap = draw(st.sampled_from([0.0, 30.0, 299.0, 301.0, 1200.0, 3601.0]))
    return params, gap


@settings(max_examples=150, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=12))
def test_replay_matches_the_emulator_cache(seq: list[tuple[dict[str, Any], float]]) -> None:
    cache = PromptCache(capabilities())
    now = 1_000_000.0
    expected, records = [], []
    for params, gap in seq:
        now += gap
        outcome = cache.apply(prepare(params, tier="standard"), now, now)
        expected.append((outcome.read, outcome.write_5m, outcome.write_1h, outcome.input))
        records.append(record_from_payload(params, ts=now, call_site="s", output_tokens=1))
    got = [
        (
            c.usage.cache_read_tokens,
            c.usage.cache_write_5m_tokens,
            c.usage.cache_write_1h_tokens,
            c.usage.input_tokens,
        )
        for c in replay(records, caller_placer)
    ]
    assert got == expected


def _run(seq: list[tuple[dict[str, Any], float]]) -> tuple[list[Any], list[Any]]:
    cache = PromptCache(capabilities())
    expected, records = [], []
    for params, now in seq:
        outcome = cache.apply(prepare(params, tier="standard"), now, now)
        expected.append((outcome.read, outcome.write_5m, outcome.input))
        records.append(record_from_payload(params, ts=now, call_site="s", output_tokens=1))
    got = [
        (c.usage.cache_read_tokens, c.usage.cache_write_5m_tokens, c.usage.input_tokens)
        for c in replay(records, caller_placer)
    ]
    return got, expected


def test_a_deeper_hit_also_refreshes_the_markers_own_entry() -> None:
    def req(second: str) -> dict[str, Any]:
        mark = {"type": "ephemeral", "ttl": "5m"}
        return {
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "system": [{"type": "text", "text": TEXTS[2], "cache_control": mark}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": second, "cache_control": mark}]}
            ],
        }

    got, expected = _run([(req(TEXTS[0]), 0.0), (req(TEXTS[0]), 200.0), (req(TEXTS[1]), 400.0)])
    assert got == expected
    assert got[2][0] > 0  # the system entry, refreshed at 200 s, is still there at 400 s


def test_the_lookback_reaches_twenty_positions_and_no_further() -> None:
    mark = {"type": "ephemeral", "ttl": "5m"}

    def req(extra: int) -> dict[str, Any]:
        blocks = [{"type": "text", "text": TEXTS[2]}] + [
            {"type": "text", "text": f"b{i}"} for i in range(extra)
        ]
        blocks[-1] = {**blocks[-1], "cache_control": mark}
        return {
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": blocks}],
        }

    for extra, found in ((19, True), (20, False)):
        got, expected = _run([(req(0), 0.0), (req(extra), 10.0)])
        assert got == expected
        assert (got[1][0] > 0) is found
