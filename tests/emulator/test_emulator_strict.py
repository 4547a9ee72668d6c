"""Strict validation, as the API refuses (ANTHROPIC.md, "Later facts": Strict validation).

Each refusal is checked for status, error type and message on the state's entry point,
and a few through HTTP and the SDK for the whole error body.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import pytest
from emulator_support import MODEL, OVERHEAD, sync_client

from engine.emulator.errors import ApiError
from engine.emulator.state import EmulatorState

OPUS_47 = "claude-opus-4-7"
THINK_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def body(text: str = "hello there", **kw: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 2048, "messages": [{"role": "user", "content": text}], **kw}


def refusal(params: dict[str, Any], *, tier: str = "standard") -> str:
    with pytest.raises(ApiError) as err:
        EmulatorState().run_message("k", params, tier=tier)  # type: ignore[arg-type]
    assert (err.value.status, err.value.type) == (400, "invalid_request_error")
    return err.value.message


TOOL = {"name": "lookup", "description": "find", "input_schema": {"type": "object"}}
CALL = {"type": "tool_use", "id": "toolu_01A", "name": "lookup", "input": {}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (body(extra_headers={"x": "1"}), "extra_headers: Extra inputs are not permitted"),
        (body(timeout=5), "timeout: Extra inputs are not permitted"),
        (body(extra_body={"a": 1}), "extra_body: Extra inputs are not permitted"),
        (body(extra_query={"a": 1}), "extra_query: Extra inputs are not permitted"),
        (body(temprature=0.5), "temprature: Extra inputs are not permitted"),
        (
            body(messages=[{"role": "user", "content": []}]),
            "messages.0: all messages must have non-empty content except for the optional final "
            "assistant message",
        ),
        (
            body(""),
            "messages.0: all messages must have non-empty content except for the optional final "
            "assistant message",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            "messages: text content blocks must be non-empty",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": "  "}]}]),
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            body(system=[{"type": "text", "text": ""}]),
            "system: text content blocks must be non-empty",
        ),
        (
            body(
                tools=[TOOL],
                messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}],
            ),
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
            "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            body(
                tools=[TOOL],
                messages=[
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": [CALL]},
                    {"role": "user", "content": "and?"},
                ],
            ),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
            "toolu_01A. Each `tool_use` block must have a corresponding `tool_result` block in the next "
            "message.",
        ),
        (body(temperature=1.5), "temperature: Input should be less than or equal to 1"),
        (body(temperature=-0.1), "temperature: Input should be greater than or equal to 0"),
        (body(top_p=2), "top_p: Input should be less than or equal to 1"),
        (
            body(max_tokens=200_000),
            "max_tokens: 200000 > 128000, which is the maximum allowed number of output tokens for "
            "claude-sonnet-4-6",
        ),
        (
            body(model="claude-haiku-4-5", max_tokens=64_001),
            "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for "
            "claude-haiku-4-5",
        ),
        (
            body(thinking={"type": "enabled", "budget_tokens": 1000}),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            body(thinking={"type": "enabled", "budget_tokens": 2048}),
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
            f"at {THINK_DOCS}#max-tokens-and-context-window-size",
        ),
        (
            body(thinking={"type": "adaptive"}, tools=[TOOL], tool_choice={"type": "tool", "name": "lookup"}),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            body(
                thinking={"type": "enabled", "budget_tokens": 1024}, tools=[TOOL], tool_choice={"type": "any"}
            ),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            body(model=OPUS_47, thinking={"type": "enabled", "budget_tokens": 1024}),
            "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive and "
            "output_config.effort to control thinking behavior.",
        ),
        (
            body(model=OPUS_47, temperature=0.2),
            "temperature: `temperature` is not supported for this model at non-default values",
        ),
        (body(model=OPUS_47, top_k=5), "top_k: `top_k` is not supported for this model"),
        (
            body(thinking={"type": "adaptive"}, temperature=0.5),
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation "
            f"at {THINK_DOCS}#feature-compatibility",
        ),
        (
            body(
                model="claude-haiku-3-5", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024}
            ),
            "thinking.type: 'enabled' thinking is not supported for this model",
        ),
        (
            body(output_config={"effort": "extreme"}),
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
        ),
        (
            body(model="claude-sonnet-4-5", output_config={"effort": "low"}),
            "output_config.effort: effort is not supported for this model",
        ),
        (
            body(
                cache_control={"type": "ephemeral", "ttl": "1h"},
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
                    }
                ],
            ),
            "messages.0.content.0.cache_control.ttl: ttl='5m' on the last block conflicts with the "
            "top-level cache_control ttl='1h'",
        ),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_the_api_refuses(params: dict[str, Any], message: str) -> None:
    assert refusal(params) == message


def test_the_same_ttl_on_the_last_block_as_the_top_level_one_is_a_no_op() -> None:
    """ANTHROPIC.md, "Later facts": automatic caching, the same TTL is a no-op."""
    marked = [{"type": "text", "text": "x" * 5000, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    state = EmulatorState()
    usage = state.run_message(
        "k",
        body(
            cache_control={"type": "ephemeral", "ttl": "1h"}, messages=[{"role": "user", "content": marked}]
        ),
    )["usage"]
    assert usage["cache_creation"]["ephemeral_1h_input_tokens"] == 1250


def test_valid_conversations_with_tools_and_thinking_pass() -> None:
    state = EmulatorState()
    result = {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "42"}
    turns = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": [result]},
    ]
    assert state.run_message("k", body(tools=[TOOL], messages=turns))["type"] == "message"
    final_empty_assistant = [{"role": "user", "content": "go"}, {"role": "assistant", "content": ""}]
    assert state.run_message("k", body(messages=final_empty_assistant))["type"] == "message"
    assert state.run_message("k", body(model=OPUS_47, temperature=1))["type"] == "message"


def test_batch_items_with_sdk_options_end_errored_with_invalid_request_error(emulator: Any) -> None:
    """ANTHROPIC.md, "Later facts": a batch item that carries SDK request options is invalid."""
    client = sync_client(emulator)
    emulator.state.config.update({"batch_latency_s": 0.0})
    items = [
        {"custom_id": "good", "params": body()},
        {"custom_id": "leaky", "params": body(extra_headers={"anthropic-beta": "x"})},
        {"custom_id": "hot", "params": body(temperature=3)},
    ]
    batch = client.messages.batches.create(requests=items)  # type: ignore[arg-type]
    for _ in range(1500):  # a hang guard, not a timing assertion
        if client.messages.batches.retrieve(batch.id).processing_status == "ended":
            break
        time.sleep(0.02)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["good"].type == "succeeded"
    for custom_id, message in (
        ("leaky", "extra_headers: Extra inputs are not permitted"),
        ("hot", "temperature: Input should be less than or equal to 1"),
    ):
        result = results[custom_id]
        assert result.type == "errored"
        assert result.error.error.type == "invalid_request_error"  # type: ignore[union-attr]
        assert result.error.error.message == message  # type: ignore[union-attr]


def test_a_refusal_has_the_documented_error_body(emulator: Any) -> None:
    reply = httpx.post(
        emulator.base_url + "/v1/messages",
        json=body(extra_headers={"x": "y"}),
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert reply.status_code == 400
    payload = reply.json()
    assert payload["type"] == "error" and payload["request_id"].startswith("req_")
    assert payload["error"] == {
        "type": "invalid_request_error",
        "message": "extra_headers: Extra inputs are not permitted",
    }
    assert reply.headers["request-id"] == payload["request_id"]


# -- forced tools that used to crash (StopIteration -> 500) ------------------------------------------


@pytest.mark.parametrize(
    ("tools", "choice", "kind"),
    [
        ([{"type": "web_search_20250305", "name": "web_search"}], {"type": "any"}, "server_tool_use"),
        (
            [{"type": "web_search_20250305", "name": "web_search"}],
            {"type": "tool", "name": "web_search"},
            "server_tool_use",
        ),
        ([{"type": "web_fetch_20250910", "name": "web_fetch"}], {"type": "any"}, "server_tool_use"),
        ([{"type": "bash_20250124", "name": "bash"}], {"type": "tool", "name": "bash"}, "tool_use"),
        ([{"type": "web_search_20250305", "name": "a_search"}, TOOL], {"type": "any"}, "tool_use"),
    ],
)
def test_forced_tools_without_an_input_schema_answer_in_shape(
    emulator: Any, tools: list[dict[str, Any]], choice: dict[str, Any], kind: str
) -> None:
    message = sync_client(emulator).messages.create(**body(tools=tools, tool_choice=choice))  # type: ignore[arg-type]
    assert message.content[0].type == kind
    if kind == "server_tool_use":
        assert message.content[1].type in ("web_search_tool_result", "web_fetch_tool_result")
        assert message.content[1].tool_use_id == message.content[0].id  # type: ignore[union-attr]
        assert message.usage.server_tool_use is not None


def test_tool_ids_are_unique_across_identical_requests(emulator: Any) -> None:
    """The API never repeats a tool_use id; a client keying results by id relies on it."""
    client = sync_client(emulator)
    params = body(tools=[TOOL], tool_choice={"type": "tool", "name": "lookup"})
    ids = {client.messages.create(**params).content[0].id for _ in range(5)}  # type: ignore[union-attr,arg-type]
    assert len(ids) == 5 and all(i.startswith("toolu_01") and len(i) == 30 for i in ids)


# -- per-request overhead and aliases ------------------------------------------------------------------


def test_input_tokens_include_the_per_request_overhead(emulator: Any) -> None:
    """ANTHROPIC.md, "Later facts": a real response counts 14 tokens for "Write a story about a cat."."""
    client = sync_client(emulator)
    params = body("Write a story about a cat.")
    assert client.messages.create(**params).usage.input_tokens == 14  # type: ignore[arg-type]
    del params["max_tokens"]
    assert client.messages.count_tokens(**params).input_tokens == 14  # type: ignore[arg-type]
    assert OVERHEAD > 0


@pytest.mark.parametrize(
    ("alias", "dated"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        ("claude-opus-4-1", "claude-opus-4-1-20250805"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),  # no dated id: the id is canonical
    ],
)
def test_aliases_resolve_to_dated_ids_and_share_their_cache(emulator: Any, alias: str, dated: str) -> None:
    """ANTHROPIC.md, "Later facts": aliases resolve to dated ids; alias and dated id share cache."""
    client = sync_client(emulator)
    system = [{"type": "text", "text": "s" * 20_000, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(
        model=alias, max_tokens=64, system=system, messages=[{"role": "user", "content": "a"}]
    )
    assert first.model == dated
    second = client.messages.create(
        model=dated, max_tokens=64, system=system, messages=[{"role": "user", "content": "b"}]
    )
    assert second.model == dated
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens == 5000


def test_sdk_raises_bad_request_for_a_refusal(emulator: Any) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        sync_client(emulator).messages.create(**body(model="claude-3-haiku-20240307", max_tokens=5000))  # type: ignore[arg-type]
    assert "maximum allowed number of output tokens" in err.value.body["error"]["message"]  # type: ignore[index]


def test_beta_shapes_a_peer_suite_needs(emulator: Any) -> None:
    """Redacted thinking on the documented trigger, context_management and container echoed,
    an MCP toolset without a name, role "system" messages of the beta API."""
    client = sync_client(emulator)
    trigger = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E"
    redacted = client.messages.create(
        **body(trigger, model="claude-3-7-sonnet-latest", thinking={"type": "enabled", "budget_tokens": 1024})  # type: ignore[arg-type]
    )
    assert redacted.content[0].type == "redacted_thinking" and redacted.content[0].data  # type: ignore[union-attr]
    managed = client.beta.messages.create(
        **body(context_management={"edits": [{"type": "clear_thinking_20251015"}]}),  # type: ignore[arg-type]
        betas=["context-management-2025-06-27"],
    )
    assert managed.context_management is not None and managed.context_management.applied_edits == []
    state = EmulatorState()
    toolset = {"type": "mcp_toolset", "mcp_server_name": "docs"}
    turns = [{"role": "user", "content": "what time is it?"}, {"role": "system", "content": "be brief"}]
    assert state.run_message("k", body(tools=[toolset], messages=turns))["type"] == "message"
    executed = state.run_message(
        "k", body(tools=[{"type": "code_execution_20250825", "name": "code_execution"}])
    )
    assert executed["container"]["id"].startswith("container_")


@pytest.mark.parametrize(
    ("model", "read_multiplier"),
    [
        ("claude-opus-5-5", 0.05),
        ("claude-fable-5-1", 0.025),
        ("claude-mythos-5-1", 0.025),
        ("claude-sonnet-4-6", 0.1),
    ],
)
def test_the_read_multiplier_is_per_model_and_billed(model: str, read_multiplier: float) -> None:
    """ANTHROPIC.md, "Later facts": cache reads are not always 0.1x; every multiplier is per model."""
    from engine.providers.anthropic.capabilities import capabilities

    prices = capabilities().model(model).prices
    assert prices.cache_read == pytest.approx(prices.input * read_multiplier)
    state = EmulatorState()
    params = body(
        model=model, system=[{"type": "text", "text": "r " * 4000, "cache_control": {"type": "ephemeral"}}]
    )
    state.run_message("k", params)
    before = state.billing.snapshot("k")["cost_usd"]
    usage = state.run_message("k", params)["usage"]
    paid = state.billing.snapshot("k")["cost_usd"] - before
    expected = (
        usage["cache_read_input_tokens"] * prices.cache_read
        + usage["input_tokens"] * prices.input
        + usage["output_tokens"] * prices.output
    ) / 1e6
    assert usage["cache_read_input_tokens"] == 2000 and paid == pytest.approx(expected)
