"""The breakpoint allocator's decisions, case by case (reasons asserted where they matter)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.decision import CachePlan
from engine.providers.anthropic.caching import BreakpointAllocator, CacheResult, prefix_payload
from engine.providers.anthropic.capabilities import load_capabilities

AUTO = CachePlan("auto", "auto")
SYSTEM = "You extract metadata from documents. " * 150  # ~1400 tokens: above the 1024 minimum
TOOLS = [{"name": "record", "description": "Record the answer", "input_schema": {"type": "object"}}]


def request(*turns: Any, system: Any = SYSTEM, **extra: Any) -> dict[str, Any]:
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]
    payload = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages, **extra}
    if system is not None:
        payload["system"] = system
    return payload


def engine_marks(result: CacheResult) -> list[tuple[str, str, str]]:
    return [(p.path, p.ttl, p.action) for p in result.placements if p.source == "engine"]


def test_one_off_prompt_gets_no_marker() -> None:
    result = BreakpointAllocator().apply(request("x " * 5000, system=None), AUTO, call_site="a", now=1.0)
    assert result.placements == ()
    assert result.payload == request("x " * 5000, system=None)


def test_shared_system_is_marked_by_construction_and_converted_to_block_form() -> None:
    result = BreakpointAllocator().apply(request("doc 1"), AUTO, call_site="a", now=1.0)
    assert engine_marks(result) == [("system.0", "5m", "placed")]
    assert result.payload["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]
    assert result.payload["messages"][0]["content"] == "doc 1", "no marker there, so no conversion"


def test_short_prefix_is_dropped_with_the_model_minimum_named() -> None:
    result = BreakpointAllocator().apply(request("q", system="be brief"), AUTO, call_site="a", now=1.0)
    [placement] = result.placements
    assert placement.action == "dropped"
    assert "below the 1024-token minimum of claude-sonnet-4-5" in placement.reason
    assert "cache_control" not in str(result.payload)


def test_a_prompt_sent_twice_is_not_written_on_its_second_use() -> None:
    """Sent once is no cache entry: writing it on the second use pays only if a third is likely."""
    allocator = BreakpointAllocator()
    for k in range(6):  # documents used exactly twice each
        doc = f"doc {k} " + "d " * 3000
        first = allocator.apply(request(doc, system=None), AUTO, call_site="s", now=k * 100.0)
        again = allocator.apply(request(doc, system=None), AUTO, call_site="s", now=k * 100.0 + 60)
        assert first.placements == ()
        assert engine_marks(again) == [], "a write nobody reads costs 1.25x"
        assert "read it back" not in str(again.placements)


def _site_whose_prompts_come_three_times() -> BreakpointAllocator:
    """An allocator whose call site "s" has learned from its runs that a prompt sent twice comes again."""
    allocator = BreakpointAllocator()
    for k in range(4):
        doc = f"doc {k} " + "d " * 3000
        for j in range(3):
            allocator.apply(request(doc, system=None), AUTO, call_site="s", now=k * 1000.0 + j * 60)
    return allocator


def test_repeats_that_go_on_are_written_on_the_second_use_and_read_on_the_third() -> None:
    allocator = _site_whose_prompts_come_three_times()
    fresh = "fresh " + "d " * 3000
    allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9000.0)
    again = allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9060.0)
    assert engine_marks(again) == [("messages.0.content.0", "5m", "placed")]
    assert (
        "sent 2 times in a row" in again.placements[0].reason
        and "a 5m write pays" in again.placements[0].reason
    )
    third = allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9120.0)
    assert engine_marks(third) == [("messages.0.content.0", "5m", "placed")]
    assert "was written at this call site and is alive" in third.placements[0].reason
    late = BreakpointAllocator().apply(request(fresh, system=None), AUTO, call_site="t", now=0.0)
    assert late.placements == (), "evidence is per call site"


def test_evidence_outside_the_ttl_does_not_count() -> None:
    allocator = BreakpointAllocator()
    doc = "d " * 3000
    allocator.apply(request(doc, system=None), CachePlan("auto", "5m"), call_site="s", now=0.0)
    result = allocator.apply(request(doc, system=None), CachePlan("auto", "5m"), call_site="s", now=301.0)
    assert result.placements == ()


def test_growing_conversation_marks_the_last_block() -> None:
    result = BreakpointAllocator().apply(request("hi", "hello", "more"), AUTO, call_site="c", now=1.0)
    assert engine_marks(result) == [("system.0", "5m", "placed"), ("messages.2.content.0", "5m", "placed")]
    assert "growing conversation" in result.placements[1].reason


def test_long_turn_keeps_a_marker_within_the_lookback_of_the_previous_entry() -> None:
    results = [{"type": "tool_result", "tool_use_id": f"t{i}", "content": "r" * 40} for i in range(25)]
    call = [{"type": "tool_use", "id": "t0", "name": "record", "input": {}}]
    allocator = BreakpointAllocator()
    previous = allocator.apply(request("q0", "a0", "q"), AUTO, call_site="c", now=0.0)
    assert ("messages.2.content.0", "5m", "placed") in engine_marks(previous), (
        "the previous turn writes its end"
    )
    result = allocator.apply(request("q0", "a0", "q", call, results), AUTO, call_site="c", now=1.0)
    marks = engine_marks(result)
    assert ("messages.2.content.0", "5m", "placed") in marks
    assert ("messages.4.content.24", "5m", "placed") in marks
    reason = next(p.reason for p in result.placements if p.path == "messages.2.content.0")
    assert "written at this call site and is alive" in reason and "read it back" in reason


def test_ttl_auto_picks_1h_when_reuse_gaps_sit_between_5_minutes_and_an_hour() -> None:
    allocator = BreakpointAllocator()
    for k in range(4):
        result = allocator.apply(request(f"doc {k}"), AUTO, call_site="slow", now=k * 900.0)
    assert engine_marks(result) == [("system.0", "1h", "placed")]
    assert "a reuse costs 3.750 with 5m entries and 0.300 with 1h entries" in result.notes[-1]


def test_ttl_auto_keeps_5m_for_frequent_reuse_and_1h_for_batches() -> None:
    allocator = BreakpointAllocator()
    for k in range(4):
        result = allocator.apply(request(f"doc {k}"), AUTO, call_site="fast", now=k * 30.0)
    assert engine_marks(result) == [("system.0", "5m", "placed")]
    batch = BreakpointAllocator().apply(request("doc"), AUTO, call_site="b", now=1.0, batch=True)
    assert engine_marks(batch) == [("system.0", "5m", "placed")], "a batch item's miss writes: 5m is cheaper"
    assert "batch item" in batch.notes[-1]


@pytest.mark.parametrize(
    ("hit_rate", "ttl", "marked"),
    [(0.3, "5m", True), (0.2, "5m", False), (0.6, "1h", True), (0.5, "1h", False)],
)
def test_batch_items_are_marked_only_where_the_hit_rate_pays_at_batch_prices(
    hit_rate: float, ttl: str, marked: bool
) -> None:
    """5m pays above (1.25 - 1) / (1.25 - 0.1) = 21.7%, 1h above (2 - 1) / (2 - 0.1) = 52.6%."""
    plan = CachePlan("explicit", ttl, ("system",))  # type: ignore[arg-type]
    result = BreakpointAllocator().apply(
        request("doc"), plan, call_site="b", now=1.0, batch=True, hit_rate=hit_rate
    )
    assert engine_marks(result) == [("system.0", ttl, "placed" if marked else "dropped")]
    assert ("cache_control" in str(result.payload)) is marked


def test_explicit_anchors_and_missing_ones_are_noted() -> None:
    plan = CachePlan("explicit", "1h", ("tools", "system", "history", "last"))
    payload = request("q " * 10, "a", "next", tools=TOOLS)
    result = BreakpointAllocator().apply(payload, plan, call_site="e", now=1.0)
    assert engine_marks(result) == [
        ("tools.0", "1h", "dropped"),
        ("system.0", "1h", "placed"),
        ("messages.1.content.0", "1h", "placed"),
        ("messages.2.content.0", "1h", "placed"),
    ]
    no_tools = BreakpointAllocator().apply(request("q"), plan, call_site="e", now=1.0)
    assert "anchor 'tools': the request has no such block" in no_tools.notes
    assert "anchor 'history': the request has no such block" in no_tools.notes


def test_caller_markers_are_kept_counted_and_ours_yield() -> None:
    marked = {"type": "ephemeral"}
    blocks = [{"type": "text", "text": f"part {i} " * 300, "cache_control": marked} for i in range(4)]
    plan = CachePlan("explicit", "5m", ("system", "last"))
    result = BreakpointAllocator().apply(request("q", system=blocks), plan, call_site="k", now=1.0)
    assert [p.action for p in result.placements if p.source == "caller"] == ["kept"] * 4
    assert engine_marks(result) == [("messages.0.content.0", "5m", "dropped")]
    assert "4-marker limit is reached (4 caller, 0 engine)" in result.placements[-1].reason


def test_never_1h_after_a_callers_5m_and_never_5m_before_a_callers_1h() -> None:
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    plan = CachePlan("explicit", "1h", ("last",))
    later = BreakpointAllocator().apply(request("q", "a", "b", system=system), plan, call_site="k", now=1.0)
    assert engine_marks(later) == [("messages.2.content.0", "5m", "downgraded")]
    assert "may not follow the 5m marker at system.0" in later.placements[-1].reason
    tail = [{"type": "text", "text": "end", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    plan5 = CachePlan("explicit", "5m", ("system",))
    before = BreakpointAllocator().apply(request(tail), plan5, call_site="k", now=1.0)
    assert engine_marks(before) == [("system.0", "5m", "dropped")]
    assert "may not precede the 1h marker at messages.0.content.0" in before.placements[-1].reason


def test_caller_markers_the_api_would_refuse_are_repaired() -> None:
    one_h, five_m = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral", "ttl": "5m"}
    turn = [
        {"type": "thinking", "thinking": "hmm", "signature": "s", "cache_control": five_m},
        {"type": "text", "text": "", "cache_control": five_m},
        {"type": "text", "text": "a", "cache_control": five_m},
        {"type": "text", "text": "b", "cache_control": one_h},
    ]
    result = BreakpointAllocator().apply(request("q", turn, "z"), CachePlan("off"), call_site="k", now=1.0)
    actions = [(p.path, p.action) for p in result.placements]
    assert actions == [
        ("messages.1.content.0", "dropped"),
        ("messages.1.content.1", "dropped"),
        ("messages.1.content.2", "kept"),
        ("messages.1.content.3", "downgraded"),
    ]
    assert "a thinking block cannot carry cache_control" in result.placements[0].reason
    assert "an empty text block cannot carry cache_control" in result.placements[1].reason
    content = result.payload["messages"][1]["content"]
    assert "cache_control" not in content[0] and "cache_control" not in content[1]
    assert content[3]["cache_control"] == five_m


def test_top_level_automatic_caching_becomes_a_block_marker() -> None:
    payload = request("q", cache_control={"type": "ephemeral", "ttl": "1h"})
    result = BreakpointAllocator(transport="bedrock").apply(payload, CachePlan("off"), call_site="k", now=1.0)
    assert "cache_control" not in result.payload
    assert result.payload["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert "top-level automatic caching" in result.placements[0].reason


def test_a_model_without_1h_gets_5m(tmp_path: Any) -> None:
    override = tmp_path / "models.yaml"
    override.write_text(
        "models:\n  - family: old\n    match: [claude-old]\n    min_cache_tokens: 1024\n    ttl_1h: false\n"
        "    prices: {input: 1, cache_write_5m: 1.25, cache_write_1h: 2, cache_read: 0.1, output: 5}\n"
    )
    caps = load_capabilities(override=override)
    payload = request("q", model="claude-old-20240101")
    result = BreakpointAllocator(caps).apply(payload, CachePlan("auto", "1h"), call_site="k", now=1.0)
    assert engine_marks(result) == [("system.0", "5m", "placed")]
    assert "takes no 1h TTL" in result.notes[-1]


NEAR_MIN = "You extract metadata from documents. " * 120  # ~1110 estimated tokens: near 1024


def test_exact_mode_asks_count_tokens_once_per_prefix_and_only_near_the_minimum() -> None:
    asked: list[dict[str, Any]] = []

    def counter(prefix: dict[str, Any]) -> int:
        asked.append(prefix)
        return 900  # the API says: shorter than the estimate, below the minimum

    allocator = BreakpointAllocator(exact_counter=counter)
    first = allocator.apply(request("one", system=NEAR_MIN), AUTO, call_site="x", now=1.0)
    allocator.apply(request("two", system=NEAR_MIN), AUTO, call_site="x", now=2.0)
    allocator.apply(request("q", system="short"), AUTO, call_site="x", now=3.0)
    allocator.apply(request("q"), AUTO, call_site="y", now=3.0)
    assert len(asked) == 1, "same prefix: counted once; far below or far above the minimum: never asked"
    assert asked[0]["system"] == NEAR_MIN and asked[0]["messages"] == [{"role": "user", "content": "."}]
    assert engine_marks(first) == [("system.0", "5m", "dropped")]
    assert "900 tokens (counted)" in first.placements[0].reason


def test_an_estimate_that_undercounts_is_corrected_by_an_exact_count() -> None:
    """Code and JSON take up to ~2.4x the bytes/4 estimate: a prefix estimated at ~700 can be cached."""
    system = '{"field": "value", "nested": [1, 2, 3]} ' * 70  # ~720 estimated tokens
    plain = BreakpointAllocator().apply(request("doc", system=system), AUTO, call_site="x", now=1.0)
    assert engine_marks(plain) == [("system.0", "5m", "dropped")], "without a counter the estimate decides"
    exact = BreakpointAllocator().apply(
        request("doc", system=system), AUTO, call_site="x", now=1.0, counter=lambda prefix: 1500
    )
    assert engine_marks(exact) == [("system.0", "5m", "placed")]
    assert exact.placements[0].prefix_tokens == 1500


def test_a_failing_counter_leaves_the_estimate_in_force() -> None:
    def broken(prefix: dict[str, Any]) -> int:
        raise ConnectionError("count_tokens unreachable")

    result = BreakpointAllocator().apply(
        request("doc", system=NEAR_MIN), AUTO, call_site="x", now=1.0, counter=broken
    )
    assert engine_marks(result) == [("system.0", "5m", "placed")]


def test_ttl_auto_weighs_bursty_gaps_by_break_even_not_by_the_median() -> None:
    """Mostly 10 s apart, one gap in three of 10 minutes: the median says 5m, the cost says 1h."""
    allocator = BreakpointAllocator()
    now = 0.0
    for k in range(12):
        now += 600.0 if k % 3 == 0 else 10.0
        result = allocator.apply(request(f"doc {k}"), AUTO, call_site="bursty", now=now)
    assert engine_marks(result) == [("system.0", "1h", "placed")]
    assert "ttl auto: over" in result.notes[-1]


def test_prefix_payload_cuts_inside_messages() -> None:
    from engine.providers.anthropic.blocks import iter_blocks

    payload = request("q", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "z")
    blocks = iter_blocks(payload)
    cut = prefix_payload(payload, blocks, 2)
    assert cut["messages"] == [
        payload["messages"][0],
        {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
    ]


@pytest.mark.parametrize("transport", ["custom", "bedrock"])
def test_other_transports_take_block_markers(transport: str) -> None:
    result = BreakpointAllocator(transport=transport).apply(request("q"), AUTO, call_site="t", now=1.0)  # type: ignore[arg-type]
    assert engine_marks(result) == [("system.0", "5m", "placed")]


def test_concurrent_use_from_threads() -> None:
    allocator = BreakpointAllocator()
    errors: list[BaseException] = []
    outputs: list[dict[str, Any]] = []

    def work(k: int) -> None:
        try:
            for j in range(30):
                outputs.append(
                    allocator.apply(request(f"q{j}", "a", "b"), AUTO, call_site=f"s{k % 3}", now=j).payload
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(outputs) == 180
    assert all(o["system"][0]["cache_control"] for o in outputs)


def test_a_system_prompt_that_varies_per_call_is_not_written_every_time() -> None:
    allocator = BreakpointAllocator()
    first = allocator.apply(request("q", system=SYSTEM + "doc 1"), AUTO, call_site="v", now=0.0)
    second = allocator.apply(request("q", system=SYSTEM + "doc 2"), AUTO, call_site="v", now=10.0)
    same = allocator.apply(request("q2", system=SYSTEM + "doc 2"), AUTO, call_site="v", now=20.0)
    assert engine_marks(first) == [("system.0", "5m", "placed")], "presumed shared on first sight"
    assert engine_marks(second) == [("system.0", "5m", "dropped")]
    assert "sent a different head 10s ago, so it varies per call" in second.placements[0].reason
    assert engine_marks(same) == [("system.0", "5m", "placed")], "seen again: shared after all"


TIERED = CachePlan("explicit", "auto", ("tools", "system", "history", "last"))


def test_ttl_auto_keeps_the_history_1h_and_writes_the_newest_turn_5m() -> None:
    payload = request("q " * 10, "a", "next", tools=TOOLS)
    result = BreakpointAllocator().apply(payload, TIERED, call_site="t", now=1.0)
    assert engine_marks(result) == [
        ("tools.0", "1h", "dropped"),
        ("system.0", "1h", "placed"),
        ("messages.1.content.0", "1h", "placed"),
        ("messages.2.content.0", "5m", "placed"),
    ]
    assert any("newest turn at 5m" in note for note in result.notes)


def test_ttl_auto_writes_the_newest_turn_1h_when_long_pauses_are_common() -> None:
    allocator = BreakpointAllocator()
    turns: list[str] = ["q " * 10]
    for k in range(4):
        turns += [f"answer {k}", f"question {k}"]
        result = allocator.apply(request(*turns), TIERED, call_site="slow", now=k * 900.0)
    assert [ttl for _, ttl, action in engine_marks(result) if action == "placed"] == ["1h", "1h", "1h"]
    assert any("100% of 2 observed reuse gaps" in note for note in result.notes)


def test_ttl_auto_opens_a_conversation_with_the_shared_head_at_1h_and_one_ttl_after_it() -> None:
    first_turn = BreakpointAllocator().apply(request("q " * 10, tools=TOOLS), TIERED, call_site="t", now=1.0)
    assert [(path, ttl) for path, ttl, _ in engine_marks(first_turn)] == [
        ("tools.0", "1h"),
        ("system.0", "1h"),
        ("messages.0.content.0", "5m"),
    ]
    assert any("shared head at 1h" in note for note in first_turn.notes)


@pytest.mark.parametrize(("follow_gap", "first_turn"), [(2.0, "5m"), (1200.0, "1h")])
def test_an_opening_request_weighs_its_first_turn_by_how_soon_conversations_here_go_on(
    follow_gap: float, first_turn: str
) -> None:
    """Conversations 10 minutes apart make the site's reuse gaps look like pauses; what a 1h
    write of the first turn buys depends on how soon *this conversation* goes on."""
    allocator = BreakpointAllocator()
    now = 0.0
    for k in range(4):
        turns = [f"question {k} " * 40]
        for j in range(3):
            allocator.apply(request(*turns, tools=TOOLS), TIERED, call_site="t", now=now)
            turns += [f"answer {k}.{j} " * 40, f"next {k}.{j} " * 40]
            now += follow_gap
        now += 600.0
    opened = allocator.apply(request("fresh question " * 40, tools=TOOLS), TIERED, call_site="t", now=now)
    assert [(path, ttl) for path, ttl, _ in engine_marks(opened)] == [
        ("tools.0", "1h"),
        ("system.0", "1h"),
        ("messages.0.content.0", first_turn),
    ]


def test_ttl_auto_without_a_history_anchor_uses_one_ttl() -> None:
    plan = CachePlan("explicit", "auto", ("system", "last"))
    no_history = BreakpointAllocator().apply(request("q", "a", "next"), plan, call_site="t", now=1.0)
    assert {ttl for _, ttl, _ in engine_marks(no_history)} == {"5m"}


def test_caller_markers_on_server_tool_blocks_are_valid_and_kept() -> None:
    marker = {"type": "ephemeral", "ttl": "5m"}
    use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    found = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [{"type": "web_search_result", "url": "https://example.com", "title": "t"}],
        "cache_control": marker,
    }
    payload = request("find it", [{"type": "text", "text": "searching"}, use, found], "thanks")
    result = BreakpointAllocator().apply(payload, CachePlan("off", "5m"), call_site="c", now=1.0)
    assert [(p.path, p.action) for p in result.placements] == [("messages.1.content.2", "kept")]
    assert result.payload["messages"][1]["content"][2]["cache_control"] == marker
    thinking = request(
        "q", [{"type": "thinking", "thinking": "hm", "signature": "s", "cache_control": marker}]
    )
    dropped = BreakpointAllocator().apply(thinking, CachePlan("off", "5m"), call_site="c", now=1.0)
    assert [p.action for p in dropped.placements] == ["dropped"]


def test_a_growing_prompt_is_written_only_where_prompts_here_go_on() -> None:
    """Reflection retries append a turn to a prompt; few retries follow, so their end is not written."""
    allocator = BreakpointAllocator()
    marked = []
    for k in range(30):
        doc = f"document {k} " + "d " * 3000
        allocator.apply(request(doc), AUTO, call_site="reflect", now=k * 100.0)
        if k % 10 == 0:  # one answer in ten fails to parse: a retry repeats the prompt
            retry = allocator.apply(
                request(doc, "{bad", "again"), AUTO, call_site="reflect", now=k * 100.0 + 5
            )
            marked.append(engine_marks(retry))
    end = ("messages.2.content.0", "5m", "placed")
    assert end in marked[0], "no evidence yet: a growing prompt is presumed to go on"
    assert end not in marked[-1], "learned: one prompt in ten goes on, a write does not pay"
    conversation = BreakpointAllocator()
    turns: list[str] = []
    for t in range(4):
        turns += [f"question {t}", f"answer {t}"]
        result = conversation.apply(request(*turns[:-1]), AUTO, call_site="chat", now=t * 30.0)
    assert ("messages.6.content.0", "5m", "placed") in engine_marks(result), "a conversation goes on"


def test_a_shared_head_does_not_make_every_repeat_look_like_it_goes_on() -> None:
    """PipesHub's extraction: every prompt starts with the same instructions block; one answer in
    five fails to parse and is retried once. Neither the prompt nor the retry is written."""
    allocator = BreakpointAllocator()
    instructions = {"type": "text", "text": "Extract the metadata as JSON. " * 80}  # ~600: below 1024
    retries = []
    for k in range(30):
        prompt = [instructions, {"type": "text", "text": f"document {k} " + "d " * 2000}]
        first = allocator.apply(request(prompt, system=None), AUTO, call_site="x", now=k * 100.0)
        assert engine_marks(first) == []
        if k % 5 == 4:
            again = request(prompt, "{bad", "again", system=None)
            retries.append(engine_marks(allocator.apply(again, AUTO, call_site="x", now=k * 100.0 + 30)))
    assert retries[-1] == [], "the shared head's long run says nothing about how often prompts repeat"


# --- where a conversation's 1h checkpoint ends ------------------------------------------
#
# A conversation moves between call sites: a tool call at one, the streamed answer at
# the other, seconds later. The 1h entry that keeps it through a pause costs
# ``w1h - w5m`` on what it writes; the engine writes it where it is short, and only
# after calls whose follow-up may come after a pause.

CHECKPOINTED = CachePlan("explicit", "auto", ("tools", "system", "history", "last"))
AGENT_TOOLS = [
    {"name": "search", "description": "Search the index " * 40, "input_schema": {"type": "object"}}
]


def _agent(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": SYSTEM,
        "tools": AGENT_TOOLS,
        "messages": messages,
    }


def _ttl_at(result: CacheResult, path: str) -> str | None:
    return next((ttl for p, ttl, action in engine_marks(result) if p == path and action != "dropped"), None)


def _tool_turn(
    allocator: BreakpointAllocator, messages: list[dict[str, Any]], turn: int, now: float
) -> tuple[CacheResult, CacheResult]:
    """One agent turn: a tool call at ``complete``, its result streamed at ``stream`` 2 s later."""
    messages.append({"role": "user", "content": f"question {turn} " + "about the contract " * 60})
    complete = allocator.apply(_agent(list(messages)), CHECKPOINTED, call_site="agent.complete", now=now)
    use = {"type": "tool_use", "id": f"toolu_{turn}", "name": "search", "input": {"q": str(turn)}}
    messages.append({"role": "assistant", "content": [use]})
    result = {"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": f"found {turn} " * 400}
    messages.append({"role": "user", "content": [result]})
    stream = allocator.apply(_agent(list(messages)), CHECKPOINTED, call_site="agent.stream", now=now + 2.0)
    messages.append({"role": "assistant", "content": f"answer {turn} " + "the contract says " * 50})
    return complete, stream


def test_a_tool_call_answered_within_seconds_makes_no_checkpoint_and_its_follow_up_makes_a_short_one() -> (
    None
):
    allocator = BreakpointAllocator()
    messages: list[dict[str, Any]] = []
    gaps = [40.0, 900.0, 60.0, 1200.0, 30.0, 700.0, 50.0, 800.0]  # half the turns come after a pause
    now = 0.0
    for turn, gap in enumerate(gaps):
        complete, stream = _tool_turn(allocator, messages, turn, now)
        now += gap
    # the last turn: the complete site's follow-ups all came 2 s later, so its history stays 5m
    history = f"messages.{len(messages) - 5}.content.0"  # the previous answer
    assert _ttl_at(complete, history) == "5m", engine_marks(complete)
    assert any("no new checkpoint" in note for note in complete.notes), complete.notes
    # the stream call reads the complete call's entry and checkpoints the tool_use block only
    tool_use = f"messages.{len(messages) - 3}.content.0"
    assert _ttl_at(stream, tool_use) == "1h", engine_marks(stream)
    assert _ttl_at(stream, f"messages.{len(messages) - 2}.content.0") == "5m"
    assert any("checkpoint at the history" in note for note in stream.notes), stream.notes


def test_the_first_call_after_a_lapse_writes_5m_and_the_next_one_checkpoints_one_short_block() -> None:
    allocator = BreakpointAllocator()
    turns: list[str] = []
    now = 0.0
    for k, gap in enumerate([30.0, 30.0, 600.0] * 3):  # one follow-up in three after a pause
        turns += [f"question {k} " + "tell me about the contract " * 50, f"ok {k}"]
        allocator.apply(request(*turns[:-1]), CHECKPOINTED, call_site="chat", now=now)
        now += gap
    now += 4000.0  # everything lapsed: re-writing the conversation at 1h would cost 0.75 per token
    turns.append("and now? " + "the contract again " * 50)
    after = allocator.apply(request(*turns), CHECKPOINTED, call_site="chat", now=now)
    assert {ttl for p, ttl, _ in engine_marks(after) if p.startswith("messages")} == {"5m"}, engine_marks(
        after
    )
    assert any("no new checkpoint" in note for note in after.notes), after.notes
    turns += ["short answer", "next " + "question about clauses " * 50]
    nxt = allocator.apply(request(*turns), CHECKPOINTED, call_site="chat", now=now + 20.0)
    answer = f"messages.{len(turns) - 2}.content.0"
    assert _ttl_at(nxt, answer) == "1h", engine_marks(nxt)
    assert _ttl_at(nxt, f"messages.{len(turns) - 1}.content.0") == "5m"


def test_a_site_whose_follow_ups_mostly_come_after_a_pause_checkpoints_through_the_newest_turn() -> None:
    allocator = BreakpointAllocator()
    turns: list[str] = []
    now = 0.0
    for k in range(8):
        turns += [f"question {k} " + "tell me about the contract " * 50, f"answer {k}"]
        result = allocator.apply(request(*turns[:-1]), CHECKPOINTED, call_site="slow", now=now)
        now += 900.0  # every follow-up after 15 minutes: 1h pays for the newest turn too
    placed = [
        ttl for p, ttl, action in engine_marks(result) if p.startswith("messages") and action == "placed"
    ]
    assert placed == ["1h", "1h"], engine_marks(result)
    assert any("checkpoint at the newest turn" in note for note in result.notes), result.notes


def test_a_site_that_has_not_paused_yet_still_checkpoints_one_short_block() -> None:
    """Six turns, every follow-up within a minute: no pause seen yet is no proof there will
    be none. One pause would lose the whole conversation, while the checkpoint costs the
    premium on a 20-token block, so the stream call still makes it (the share of pauses
    is estimated with one pause and one quick follow-up assumed up front)."""
    allocator = BreakpointAllocator()
    messages: list[dict[str, Any]] = []
    now = 0.0
    for turn in range(6):
        complete, stream = _tool_turn(allocator, messages, turn, now)
        now += 40.0
    tool_use = f"messages.{len(messages) - 3}.content.0"
    assert _ttl_at(stream, tool_use) == "1h", engine_marks(stream)
    assert any("checkpoint at the history" in note for note in stream.notes), stream.notes
    assert _ttl_at(complete, f"messages.{len(messages) - 5}.content.0") == "5m", engine_marks(complete)


def test_a_request_that_failed_leaves_no_sighting_and_no_entry_at_its_call_site() -> None:
    """The site's own memory is taken back too: a send that failed wrote nothing and was not a
    use of its prompt. Its resend is the same second use again (a write that pays), not a
    third one that reads back an entry the failed send never made."""
    allocator = _site_whose_prompts_come_three_times()
    fresh = "fresh " + "d " * 3000
    allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9000.0)
    second = allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9060.0)
    assert "sent 2 times in a row" in second.placements[0].reason
    allocator.failed(second.payload, now=9060.0)
    resend = allocator.apply(request(fresh, system=None), AUTO, call_site="s", now=9061.0)
    assert engine_marks(resend) == [("messages.0.content.0", "5m", "placed")]
    assert "sent 2 times in a row" in resend.placements[0].reason, resend.placements[0].reason


def test_a_request_that_failed_is_not_counted_as_having_written_its_checkpoint() -> None:
    """The streamed answer's request fails before the API processed it (a 429, a refused
    connection). Its resend must weigh the checkpoint against the cache as it is: read up to
    the tool call's request, write the short tool_use block at 1h. Believing the failed send
    wrote everything, the resend would take a 1h write of the whole tool result for free."""
    allocator = BreakpointAllocator()
    messages: list[dict[str, Any]] = []
    now = 0.0
    for turn, gap in enumerate([40.0, 900.0] * 3):
        _tool_turn(allocator, messages, turn, now)
        now += gap
    messages.append({"role": "user", "content": "question 6 " + "about the contract " * 60})
    allocator.apply(_agent(list(messages)), CHECKPOINTED, call_site="agent.complete", now=now)
    use = {"type": "tool_use", "id": "toolu_6", "name": "search", "input": {"q": "6"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_6", "content": "found 6 " * 400}
    messages += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    sent = allocator.apply(_agent(list(messages)), CHECKPOINTED, call_site="agent.stream", now=now + 2.0)
    allocator.failed(sent.payload, now=now + 2.0)
    again = allocator.apply(_agent(list(messages)), CHECKPOINTED, call_site="agent.stream", now=now + 3.0)
    assert _ttl_at(again, f"messages.{len(messages) - 2}.content.0") == "1h", engine_marks(again)
    assert _ttl_at(again, f"messages.{len(messages) - 1}.content.0") == "5m", engine_marks(again)
    assert any("checkpoint at the history" in note for note in again.notes), again.notes
