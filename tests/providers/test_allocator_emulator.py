"""The allocator's markers on the emulator: what it expects to pay off does, in the bill."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from engine.decision import CachePlan
from engine.providers.anthropic.caching import BreakpointAllocator, sdk_counter

MODEL = "claude-sonnet-4-6"
AUTO = CachePlan("auto", "auto")
SYSTEM = "You classify documents for the search index. " * 130


@pytest.fixture
def sdk(emulator: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="sk-test-cache", base_url=emulator.base_url) as client:
        yield client


def send(
    sdk: anthropic.Anthropic, allocator: BreakpointAllocator, payload: dict[str, Any], now: float
) -> Any:
    result = allocator.apply(payload, AUTO, call_site="chat.agent.complete", now=now)
    return result, sdk.messages.create(**result.payload)


def test_shared_system_prompt_is_written_once_then_read(sdk: anthropic.Anthropic) -> None:
    allocator = BreakpointAllocator()
    base = {"model": MODEL, "max_tokens": 8, "system": SYSTEM}
    first, r1 = send(sdk, allocator, {**base, "messages": [{"role": "user", "content": "doc one"}]}, 1.0)
    _, r2 = send(sdk, allocator, {**base, "messages": [{"role": "user", "content": "doc two"}]}, 2.0)
    [placed] = first.placements
    assert r1.usage.cache_creation_input_tokens == placed.prefix_tokens, "engine and emulator agree on length"
    assert r2.usage.cache_read_input_tokens == placed.prefix_tokens
    assert r2.usage.cache_creation_input_tokens == 0


def test_a_one_off_prompt_pays_no_write_premium(sdk: anthropic.Anthropic) -> None:
    payload = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "one off " * 900}]}
    result, response = send(sdk, BreakpointAllocator(), payload, 1.0)
    assert result.placements == ()
    assert response.usage.cache_creation_input_tokens == 0


def test_an_agent_loop_reads_each_previous_turn_even_after_a_long_turn(sdk: anthropic.Anthropic) -> None:
    allocator = BreakpointAllocator()
    tools = [{"name": "search", "description": "Search the index", "input_schema": {"type": "object"}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "find the contract"}]
    reads = []
    for turn in range(4):
        payload = {
            "model": MODEL,
            "max_tokens": 8,
            "system": SYSTEM,
            "tools": tools,
            "messages": list(messages),
        }
        _, response = send(sdk, allocator, payload, 1.0 + turn)
        reads.append(response.usage.cache_read_input_tokens)
        call = {"type": "tool_use", "id": f"toolu_{turn}", "name": "search", "input": {"q": str(turn)}}
        messages.append({"role": "assistant", "content": [call]})
        width = 25 if turn == 1 else 2  # one turn adds more than the 20-position lookback
        results = [
            {"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": f"hit {turn}.{k} " * 40}
            for k in range(width)
        ]
        messages.append({"role": "user", "content": results})
    assert reads[0] == 0
    assert reads[1] > 0 and reads[2] > reads[1] and reads[3] > reads[2], reads


def test_exact_mode_with_count_tokens(sdk: anthropic.Anthropic) -> None:
    allocator = BreakpointAllocator(exact_counter=sdk_counter(sdk))
    payload = {
        "model": MODEL,
        "max_tokens": 8,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": "x"}],
    }
    result, response = send(sdk, allocator, payload, 1.0)
    [placed] = result.placements
    assert placed.action == "placed"
    written = response.usage.cache_creation_input_tokens
    assert 0 <= placed.prefix_tokens - written <= 4, "count_tokens of the prefix plus a one-character turn"


def test_an_agent_loop_checkpoints_only_the_tool_call_block_at_1h(sdk: anthropic.Anthropic) -> None:
    """What the engine believes each request reads is what the emulator reads: once the two sites'
    follow-ups are known, the tool call's request writes no 1h entry, and its follow-up's 1h write
    is the tool_use block alone (the answer's is 5m; a 1h checkpoint there cost 0.75x on it)."""
    allocator = BreakpointAllocator()
    plan = CachePlan("explicit", "auto", ("tools", "system", "history", "last"))
    tools = [{"name": "search", "description": "Search the index", "input_schema": {"type": "object"}}]
    base = {"model": MODEL, "max_tokens": 8, "system": SYSTEM, "tools": tools}
    messages: list[dict[str, Any]] = []
    now = 0.0
    one_hour = []
    for turn in range(8):
        messages.append({"role": "user", "content": f"question {turn} " + "about the contract " * 40})
        done = allocator.apply(
            {**base, "messages": list(messages)}, plan, call_site="agent.complete", now=now
        )
        complete = sdk.messages.create(**done.payload)
        use = {"type": "tool_use", "id": f"toolu_{turn}", "name": "search", "input": {"q": str(turn)}}
        messages += [
            {"role": "assistant", "content": [use]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": "x " * 300}],
            },
        ]
        streamed = allocator.apply(
            {**base, "messages": list(messages)}, plan, call_site="agent.stream", now=now + 2
        )
        stream = sdk.messages.create(**streamed.payload)
        tool_use = next(p for p in streamed.placements if p.path == f"messages.{len(messages) - 2}.content.0")
        before = next(p for p in done.placements if p.path == f"messages.{len(messages) - 3}.content.0")
        one_hour.append(
            (
                complete.usage.cache_creation.ephemeral_1h_input_tokens,
                stream.usage.cache_creation.ephemeral_1h_input_tokens,
                tool_use.prefix_tokens - before.prefix_tokens,
            )
        )
        messages.append({"role": "assistant", "content": f"answer {turn} " + "it says " * 40})
        now += [40.0, 900.0][turn % 2]
    for complete_1h, stream_1h, block in one_hour[6:]:
        assert complete_1h == 0
        assert 0 < stream_1h <= block + 4, one_hour  # the emulator counts real tokens: about the estimate


def test_the_shared_head_outlives_a_lull_that_other_conversations_read_past(
    sdk: anthropic.Anthropic, emulator: Any
) -> None:
    """A conversation that resumes after more than an hour still reads the tools and system prompt.

    The head's entry is written once, by the first conversation's opening request, and its
    TTL is kept by every refresh. Later requests read past it (their own history), so after
    a lull of more than 5 minutes a 5m head is gone for good: nothing writes it again until
    a request that cannot read further comes, and that one pays the whole head again."""
    allocator = BreakpointAllocator()
    plan = CachePlan("explicit", "auto", ("tools", "system", "history", "last"))
    tools = [{"name": "search", "description": "Search the index", "input_schema": {"type": "object"}}]
    base = {"model": MODEL, "max_tokens": 8, "system": SYSTEM, "tools": tools}
    clock = emulator.state.clock
    start = clock.now()

    def at(t: float) -> None:
        clock.advance(max(0.0, start + t - clock.now()))

    def turn(messages: list[dict[str, Any]], t: float, site: str) -> Any:
        at(t)
        result = allocator.apply({**base, "messages": list(messages)}, plan, call_site=site, now=t)
        response = sdk.messages.create(**result.payload)
        messages.append({"role": "assistant", "content": f"answer at {t:.0f} " + "it says " * 40})
        messages.append({"role": "user", "content": f"and then {t:.0f} " + "about the contract " * 40})
        return result, response

    a: list[dict[str, Any]] = [{"role": "user", "content": "question a " + "about the contract " * 40}]
    b: list[dict[str, Any]] = [{"role": "user", "content": "question b " + "about the contract " * 40}]
    opened, _ = turn(a, 0.0, "agent.stream")
    head = next(p for p in opened.placements if p.path == "system.0").prefix_tokens
    turn(a, 2.0, "agent.stream")
    turn(b, 10.0, "agent.stream")
    turn(b, 12.0, "agent.stream")
    for t in range(412, 3800, 200):  # a lull of 400 s, then b goes on every 200 s, reading its own history
        _, response = turn(b, float(t), "agent.stream")
        assert response.usage.cache_read_input_tokens > head
    _, resumed = turn(a, 3800.0, "agent.stream")  # a's own entries are more than an hour old
    assert resumed.usage.cache_read_input_tokens >= head, resumed.usage
