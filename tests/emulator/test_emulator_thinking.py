"""Extended thinking, effort and cache-miss diagnostics (ANTHROPIC.md, "Later facts").

Thinking: accepted per model (enabled / adaptive), thinking blocks with signatures in
responses and streams; previous turns' thinking stripped from the prompt, so not part
of the next turn's cached prefix; thinking and effort changes invalidate messages only.
Diagnostics: ``diagnostics.previous_message_id`` answers ``cache_miss_reason``.
"""

from __future__ import annotations

from typing import Any

import pytest
from emulator_support import MODEL, sync_client

from engine.emulator.state import EmulatorState

SYSTEM = [{"type": "text", "text": "house rules " * 600, "cache_control": {"type": "ephemeral"}}]


def _params(**kw: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": "think"}], **kw}


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 2048}),
        ("claude-sonnet-4-6", {"type": "adaptive"}),
        ("claude-opus-4-7", {"type": "adaptive"}),
        ("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 1024}),
    ],
)
def test_a_thinking_reply_starts_with_a_signed_thinking_block(
    emulator: Any, model: str, thinking: dict[str, Any]
) -> None:
    message = sync_client(emulator).messages.create(**_params(model=model, thinking=thinking))  # type: ignore[arg-type]
    first = message.content[0]
    assert first.type == "thinking" and first.thinking and first.signature
    assert message.content[-1].type == "text"
    assert message.usage.output_tokens <= 4096


def test_effort_is_accepted_where_the_model_takes_it(emulator: Any) -> None:
    client = sync_client(emulator)
    for effort in ("low", "medium", "high", "max"):
        message = client.messages.create(
            **_params(output_config={"effort": effort}, thinking={"type": "adaptive"})
        )  # type: ignore[arg-type]
        assert message.stop_reason in ("end_turn", "max_tokens")


def test_a_streamed_thinking_block_carries_thinking_and_signature_deltas(emulator: Any) -> None:
    client = sync_client(emulator)
    params = _params(thinking={"type": "enabled", "budget_tokens": 1024})
    with client.messages.stream(**params) as stream:  # type: ignore[arg-type]
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    assert final.content[0].type == "thinking" and final.content[0].signature
    assert final.content[0].thinking == client.messages.create(**params).content[0].thinking  # type: ignore[arg-type,union-attr]


def test_previous_turns_thinking_is_not_part_of_the_cached_prefix() -> None:
    """The next turn reads what the previous turn wrote, though it now carries the thinking."""
    state = EmulatorState()
    auto = {"cache_control": {"type": "ephemeral"}}
    first_turn = [{"role": "user", "content": "question " * 1200}]
    state.run_message("k", _params(messages=first_turn, **auto))
    thought = {"type": "thinking", "thinking": "long reasoning " * 300, "signature": "sig"}
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": [thought, {"type": "text", "text": "answer"}]},
        {"role": "user", "content": "and then?"},
    ]
    usage = state.run_message("k", _params(messages=second_turn, **auto))["usage"]
    assert usage["cache_read_input_tokens"] == 2700  # the first turn, thinking not counted in between
    counted = state.count_tokens({"model": MODEL, "messages": second_turn})["input_tokens"]
    without = [second_turn[0], {"role": "assistant", "content": "answer"}, second_turn[2]]
    assert counted == state.count_tokens({"model": MODEL, "messages": without})["input_tokens"]


def test_thinking_in_the_current_tool_loop_stays_in_the_prompt() -> None:
    state = EmulatorState()
    tool = {"name": "lookup", "input_schema": {"type": "object"}}
    thought = {"type": "thinking", "thinking": "reasoning " * 100, "signature": "sig"}
    call = {"type": "tool_use", "id": "toolu_01A", "name": "lookup", "input": {}}
    loop = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [thought, call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "42"}]},
    ]
    with_thought = state.count_tokens({"model": MODEL, "tools": [tool], "messages": loop})["input_tokens"]
    loop[1] = {"role": "assistant", "content": [call]}
    assert (
        with_thought - state.count_tokens({"model": MODEL, "tools": [tool], "messages": loop})["input_tokens"]
        == 250
    )


@pytest.mark.parametrize(
    ("change", "system_read"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, True),
        ({"output_config": {"effort": "low"}}, True),
        ({"tool_choice": {"type": "none"}}, True),
    ],
)
def test_thinking_and_effort_changes_invalidate_messages_only(
    change: dict[str, Any], system_read: bool
) -> None:
    state = EmulatorState()
    turn = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "m " * 3000, "cache_control": {"type": "ephemeral"}}],
        }
    ]
    base = _params(system=SYSTEM, messages=turn, tools=[{"name": "t", "input_schema": {"type": "object"}}])
    state.run_message("k", base)
    same = state.run_message("k", base)["usage"]
    assert same["cache_creation_input_tokens"] == 0
    changed = state.run_message("k", {**base, **change})["usage"]
    assert changed["cache_read_input_tokens"] > 0 and changed["cache_creation_input_tokens"] == 1500
    assert changed["cache_read_input_tokens"] < same["cache_read_input_tokens"]


# -- diagnostics -----------------------------------------------------------------------------------------


def _diagnosed(state: EmulatorState, previous: str | None, **kw: Any) -> Any:
    params = _params(system=SYSTEM, diagnostics={"previous_message_id": previous}, **kw)
    return state.run_message("k", params)


def test_cache_miss_reasons_name_what_changed() -> None:
    state = EmulatorState()
    first = _diagnosed(state, None)
    assert first["diagnostics"] is None  # opted in on the first turn
    same = _diagnosed(state, first["id"])
    assert same["diagnostics"] is None and same["usage"]["cache_read_input_tokens"] == 1800
    other_system = [{**SYSTEM[0], "text": "other rules " * 600}]
    cases = [
        ({"model": "claude-opus-4-6"}, "model_changed"),
        ({"tools": [{"name": "t", "input_schema": {"type": "object"}}]}, "tools_changed"),
        ({"system": other_system}, "system_changed"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "unavailable"),
    ]
    for change, kind in cases:
        params = {**_params(system=SYSTEM), **change, "diagnostics": {"previous_message_id": same["id"]}}
        reason = state.run_message("k", params)["diagnostics"]["cache_miss_reason"]
        assert reason["type"] == kind, change
        if kind != "unavailable":
            assert reason["cache_missed_input_tokens"] == 1800
    unknown = _diagnosed(state, "msg_nope")["diagnostics"]["cache_miss_reason"]
    assert unknown == {"type": "previous_message_not_found"}


def test_messages_changed_and_ttl_expiry() -> None:
    state = EmulatorState()
    turn = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "m " * 3000, "cache_control": {"type": "ephemeral"}}],
        }
    ]
    first = state.run_message("k", _params(messages=turn))
    edited = [{"role": "user", "content": [{**turn[0]["content"][0], "text": "n " * 3000}]}]
    reason = state.run_message(
        "k", _params(messages=edited, diagnostics={"previous_message_id": first["id"]})
    )
    assert reason["diagnostics"]["cache_miss_reason"] == {
        "type": "messages_changed",
        "cache_missed_input_tokens": 1500,
    }
    again = state.run_message("k", _params(messages=turn))
    state.clock.advance(301)  # the 5m entry runs out
    late = state.run_message("k", _params(messages=turn, diagnostics={"previous_message_id": again["id"]}))
    assert late["diagnostics"]["cache_miss_reason"] == {"type": "unavailable"}


def test_diagnostics_parse_with_the_sdk(emulator: Any) -> None:
    import inspect

    import anthropic

    client = sync_client(emulator)
    if "diagnostics" not in inspect.signature(client.messages.create).parameters:
        pytest.skip(f"anthropic {anthropic.__version__} predates the cache-miss diagnostics beta")
    first = client.messages.create(**_params(system=SYSTEM))  # type: ignore[arg-type]
    second = client.messages.create(
        **_params(system=SYSTEM[:0] or "plain", diagnostics={"previous_message_id": first.id})
    )  # type: ignore[arg-type]
    assert second.diagnostics is not None and second.diagnostics.cache_miss_reason is not None
    assert second.diagnostics.cache_miss_reason.type == "system_changed"
