"""One fidelity test per rule of ANTHROPIC.md "Prompt caching", through the official SDK
(each runs with the sync and the async client). docs/emulator.md maps rules to tests."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import pytest
from emulator_support import MODEL, OVERHEAD, Api, block, control, text_of, usage_of

from engine.providers.anthropic.capabilities import capabilities

MIN = capabilities().model(MODEL).min_cache_tokens  # 1024 for the test model


def user(text: str = "q") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def cached_system(api: Api, tokens: int, question: str, key: str = "key-a", **kw: Any) -> dict[str, Any]:
    return usage_of(api.create(key, system=[block(tokens, "sys", **kw)], messages=user(question)))


# -- marker syntax and TTL ------------------------------------------------------------------


def test_ttl_defaults_to_5m_and_each_hit_refreshes_it(api: Api) -> None:
    first = cached_system(api, 1100, "q1", mark=True)
    assert (first["write"], first["w5m"], first["w1h"], first["read"]) == (1100, 1100, 0, 0)
    api.advance(250)
    assert cached_system(api, 1100, "q2", mark=True)["read"] == 1100
    api.advance(250)  # 500 s after the write, 250 s after the refreshing hit
    assert cached_system(api, 1100, "q3", mark=True)["read"] == 1100
    api.advance(301)
    expired = cached_system(api, 1100, "q4", mark=True)
    assert (expired["read"], expired["write"]) == (0, 1100)


def test_1h_marker_lives_an_hour(api: Api) -> None:
    first = cached_system(api, 1100, "q1", ttl="1h")
    assert (first["w1h"], first["w5m"]) == (1100, 0)
    api.advance(3000)
    assert cached_system(api, 1100, "q2", ttl="1h")["read"] == 1100
    api.advance(3601)
    assert cached_system(api, 1100, "q3", ttl="1h")["read"] == 0


# -- where a marker may sit -----------------------------------------------------------------

_PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d49484452000000640000006408020000") + b"\x00" * 16
).decode()
_MARK = {"cache_control": {"type": "ephemeral"}}
_BIG_TOOL = {"name": "lookup", "description": text_of(1100, "tool"), "input_schema": {"type": "object"}}


def _placements() -> dict[str, dict[str, Any]]:
    sys = [block(1100, "sys")]
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
    return {
        "tool definition": {"tools": [{**_BIG_TOOL, **_MARK}], "messages": user()},
        "system block": {"system": [block(1100, "sys", mark=True)], "messages": user()},
        "user text": {"messages": [{"role": "user", "content": [block(1100, "u", mark=True)]}]},
        "assistant text": {
            "system": sys,
            "messages": [
                *user(),
                {"role": "assistant", "content": [{"type": "text", "text": "ok", **_MARK}]},
                *user(),
            ],
        },
        "image": {
            "system": sys,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": _PNG},
                            **_MARK,
                        },
                        {"type": "text", "text": "what is it"},
                    ],
                }
            ],
        },
        "document": {
            "system": sys,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
                            **_MARK,
                        },
                        {"type": "text", "text": "summarize"},
                    ],
                }
            ],
        },
        "tool_use": {
            "tools": [_BIG_TOOL],
            "messages": [
                *user(),
                {"role": "assistant", "content": [{**tool_use, **_MARK}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}],
                },
            ],
        },
        "tool_result": {
            "tools": [_BIG_TOOL],
            "messages": [
                *user(),
                {"role": "assistant", "content": [tool_use]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r", **_MARK}],
                },
            ],
        },
        "text inside tool_result": {
            "tools": [_BIG_TOOL],
            "messages": [
                *user(),
                {"role": "assistant", "content": [tool_use]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [{"type": "text", "text": "r", **_MARK}],
                        }
                    ],
                },
            ],
        },
    }


@pytest.mark.parametrize("where", list(_placements()))
def test_marker_may_sit_on(api: Api, where: str) -> None:
    params = _placements()[where]
    first = usage_of(api.create(**params))
    assert first["write"] >= 1100 and first["read"] == 0
    assert first["write"] + first["input"] == api.count(**params)
    again = usage_of(api.create(**params))
    assert (again["read"], again["write"]) == (first["write"], 0)


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (
            [{"type": "thinking", "thinking": "hmm", "signature": "s", **_MARK}],
            "messages.1.content.0.cache_control",
        ),
        ([{"type": "redacted_thinking", "data": "xx", **_MARK}], "messages.1.content.0.cache_control"),
    ],
    ids=["thinking", "redacted_thinking"],
)
def test_marker_refused_on_thinking_and_empty_text(
    api: Api, content: list[dict[str, Any]], path: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        api.create(messages=[*user(), {"role": "assistant", "content": content}, *user()])
    assert err.value.status_code == 400
    assert err.value.body["error"]["message"].startswith(path + ": cache_control cannot be set")


def test_an_empty_text_block_is_refused_marker_or_not(api: Api) -> None:
    """ANTHROPIC.md: no marker on empty text blocks; "Later facts": an empty text block is a 400."""
    for block_ in ({"type": "text", "text": "", **_MARK}, {"type": "text", "text": ""}):
        with pytest.raises(anthropic.BadRequestError) as err:
            api.create(messages=[*user(), {"role": "assistant", "content": [block_]}, *user()])
        assert err.value.body["error"]["message"] == "messages: text content blocks must be non-empty"


# -- prefix order and extent ------------------------------------------------------------------


def test_prefix_runs_tools_system_messages_up_to_the_marked_block(api: Api) -> None:
    tools = [{"name": "t", "description": text_of(600, "tool"), "input_schema": {"type": "object"}}]
    system = [block(500, "sys", mark=True), block(50, "after")]
    params = {"tools": tools, "system": system, "messages": user("first question")}
    prefix = api.count(tools=tools, system=system[:1], messages=user("x")) - 1 - OVERHEAD  # "x": one token
    first = usage_of(api.create(**params))
    assert first["write"] == prefix and first["input"] == api.count(**params) - prefix
    changed_tail = usage_of(
        api.create(tools=tools, system=[system[0], block(50, "other")], messages=user("second"))
    )
    assert changed_tail["read"] == prefix
    changed_tool = [{**tools[0], "description": text_of(600, "tool2")}]
    assert usage_of(api.create(tools=changed_tool, system=system, messages=user("third")))["read"] == 0


def test_at_most_four_markers(api: Api) -> None:
    system = [block(300, f"s{i}", mark=True) for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as err:
        api.create(system=system, messages=user())
    assert err.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }
    assert usage_of(api.create(system=system[:4], messages=user()))["write"] == 1200


def test_1h_marker_after_5m_marker_names_the_path(api: Api) -> None:
    content: list[dict[str, Any]] = [block(10, f"b{i}") for i in range(11)]
    content[2] = block(10, "five", ttl="5m")
    content.append(
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [
                {"type": "text", "text": "late", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
            ],
        }
    )
    call = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}
    tools = [{"name": "t", "input_schema": {"type": "object"}}]

    def turns() -> list[dict[str, Any]]:
        return [
            *user("start"),
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": content},
        ]

    with pytest.raises(anthropic.BadRequestError) as err:
        api.create(tools=tools, messages=turns())
    assert err.value.body["error"]["message"] == (
        "messages.2.content.11.content.0.cache_control.ttl: a ttl='1h' cache_control block "
        "must not come after a ttl='5m' cache_control block"
    )
    content[2] = block(10, "five", ttl="1h")  # 1h before 1h is fine
    api.create(tools=tools, messages=turns())


# -- reads, writes, lookback ----------------------------------------------------------------------


def _system(sizes: list[int], marks: dict[int, str]) -> list[dict[str, Any]]:
    return [block(n, f"p{i}", ttl=marks.get(i)) for i, n in enumerate(sizes)]


def test_writes_happen_only_at_markers(api: Api) -> None:
    sizes = [300, 300, 300, 300, 300, 300]  # cumulative 300 .. 1800
    first = usage_of(api.create(system=_system(sizes[:5], {3: "5m"}), messages=user()))
    assert first["write"] == 1200  # block 4 was sent, but carried no marker
    second = usage_of(api.create(system=_system(sizes, {5: "5m"}), messages=user()))
    assert (second["read"], second["write"]) == (1200, 600)  # found at 3, never at 4


def test_lookback_walks_at_most_20_positions(api: Api) -> None:
    sizes = [1100] + [10] * 24
    for key, marker_at, expected_read in (("near", 19, 1100), ("far", 20, 0)):
        api.create(key, system=_system(sizes, {0: "5m"}), messages=user())
        later = usage_of(api.create(key, system=_system(sizes, {marker_at: "5m"}), messages=user()))
        assert later["read"] == expected_read, key
        assert later["read"] + later["write"] == 1100 + 10 * marker_at


def test_matches_must_be_exact(api: Api) -> None:
    api.create(system=[{"type": "text", "text": text_of(1100, "a"), **_MARK}], messages=user())
    altered = text_of(1100, "a")[:-1] + "!"
    miss = usage_of(api.create(system=[{"type": "text", "text": altered, **_MARK}], messages=user()))
    assert (miss["read"], miss["write"]) == (0, 1100)


async def test_entry_usable_only_once_the_writing_response_started(emulator: Any) -> None:
    import asyncio

    from emulator_support import async_client

    control(emulator, "POST", "/_emulator/faults", json={"latency_s": 0.8})
    params = {
        "model": MODEL,
        "max_tokens": 16,
        "system": [block(1100, "race", mark=True)],
        "messages": user(),
    }
    async with async_client(emulator) as client:
        both = await asyncio.gather(client.messages.create(**params), client.messages.create(**params))
        assert [usage_of(m)["read"] for m in both] == [0, 0]
        assert [usage_of(m)["write"] for m in both] == [1100, 1100]
        assert usage_of(await client.messages.create(**params))["read"] == 1100


# -- minimum length -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["claude-opus-5", "claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5"]
)
def test_minimum_cacheable_length_per_model(api: Api, model: str) -> None:
    minimum = capabilities().model(model).min_cache_tokens
    for _ in range(2):
        short = usage_of(
            api.create(model=model, system=[block(minimum - 1, "short", mark=True)], messages=user())
        )
        assert (short["write"], short["read"], short["input"]) == (0, 0, minimum + OVERHEAD)
    enough = usage_of(api.create(model=model, system=[block(minimum, "long", mark=True)], messages=user()))
    assert (enough["write"], enough["input"]) == (minimum, 1 + OVERHEAD)


# -- automatic caching ----------------------------------------------------------------------------

_AUTO = {"cache_control": {"type": "ephemeral"}}


def test_automatic_caching_marks_the_last_cacheable_block(api: Api) -> None:
    thinking = {"type": "thinking", "thinking": text_of(40, "think"), "signature": "sig"}
    messages = [{"role": "user", "content": [block(1100, "u")]}, {"role": "assistant", "content": [thinking]}]
    first = usage_of(api.create(extra_body=_AUTO, messages=messages))
    assert (first["write"], first["input"]) == (1100, 40 + OVERHEAD)  # walked back past the thinking block
    assert usage_of(api.create(extra_body=_AUTO, messages=messages))["read"] == 1100


def test_automatic_caching_takes_one_of_the_four_slots(api: Api) -> None:
    system = [block(400, f"s{i}", mark=True) for i in range(4)]
    with pytest.raises(anthropic.BadRequestError) as err:
        api.create(extra_body=_AUTO, system=system, messages=user())
    assert (
        err.value.body["error"]["message"]
        == "A maximum of 4 blocks with cache_control may be provided. Found 5."
    )
    assert usage_of(api.create(extra_body=_AUTO, system=system[:3], messages=user("hello")))["write"] == 1202


def test_automatic_caching_single_turn_pitfall(api: Api) -> None:
    system = [block(1100, "stable")]
    for i in range(3):
        u = usage_of(api.create(extra_body=_AUTO, system=system, messages=user(f"new question {i}")))
        assert u["read"] == 0 and u["write"] == 1100 + 4, i  # writes every time, never reads


# -- pricing --------------------------------------------------------------------------------------


def test_cache_prices_are_the_multipliers_on_the_input_price(api: Api) -> None:
    caps = capabilities()
    prices, mult = caps.model(MODEL).prices, caps.multipliers
    assert prices.cache_write_5m == pytest.approx(prices.input * mult["cache_write_5m"])
    assert prices.cache_write_1h == pytest.approx(prices.input * mult["cache_write_1h"])
    assert prices.cache_read == pytest.approx(prices.input * mult["cache_read"])
    api.create(system=[block(1100, "p1", ttl="1h"), block(300, "p2", ttl="5m")], messages=user())
    api.create(system=[block(1100, "p1", ttl="1h"), block(300, "p2", ttl="5m")], messages=user())
    bill = control(api.emulator, "GET", "/_emulator/billing")
    expected = (
        1100 * prices.cache_write_1h
        + 300 * prices.cache_write_5m
        + 1400 * prices.cache_read
        + 2 * (1 + OVERHEAD) * prices.input
        + bill["output_tokens"] * prices.output
    ) / 1e6
    assert bill["cost_usd"] == pytest.approx(expected)


def test_cache_multipliers_stack_with_the_batch_discount(emulator: Any) -> None:
    state = emulator.state
    params = {"model": MODEL, "max_tokens": 8, "system": [block(1100, "b", mark=True)], "messages": user()}
    standard = state.run_message("std", params)["usage"]
    batch = state.run_message("bat", params, tier="batch")["usage"]
    assert batch["service_tier"] == "batch" and batch["cache_creation_input_tokens"] == 1100
    std_cost = state.billing.snapshot("std")["cost_usd"]
    assert standard["output_tokens"] == batch["output_tokens"]
    assert state.billing.snapshot("bat")["cost_usd"] == pytest.approx(
        std_cost * capabilities().multipliers["batch"]
    )


def test_mixed_ttl_billing_reads_to_a_then_1h_to_b_then_5m_to_c(api: Api) -> None:
    sizes = [400, 400, 400, 100, 100, 100, 100, 100, 100, 50]  # cumulative: 400 800 1200 ... 1800 1850
    api.create(system=_system(sizes, {2: "5m"}), messages=user())  # entry at position 2 (A)
    u = usage_of(api.create(system=_system(sizes, {5: "1h", 8: "5m"}), messages=user()))
    assert u["read"] == 1200  # up to A
    assert u["w1h"] == 1500 - 1200  # A .. B (highest 1h marker)
    assert u["w5m"] == 1800 - 1500  # B .. C (last marker)
    assert u["input"] == 50 + 1 + OVERHEAD  # after C, and the fixed overhead
    assert u["write"] == u["w1h"] + u["w5m"]


# -- invalidation -----------------------------------------------------------------------------------


def _layered(**changes: Any) -> dict[str, Any]:
    """Markers on a tool (1100), a system block (+300) and a user block (+300)."""
    tool = {
        "name": "lookup",
        "description": text_of(1100, changes.pop("tool_tag", "tool")),
        "input_schema": {"type": "object"},
        **_MARK,
    }
    content: list[dict[str, Any]] = [block(300, "msg", mark=True), {"type": "text", "text": "question"}]
    if changes.pop("image", False):
        content.insert(
            0, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _PNG}}
        )
    if "citations" in changes:
        doc = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "d"},
            "citations": {"enabled": changes.pop("citations")},
        }
        content.append(doc)
    tools = [tool, *changes.pop("extra_tools", [])]
    params = {
        "tools": tools,
        "system": [block(300, "sys", mark=True)],
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 2048,
        **changes,
    }
    return params


@pytest.mark.parametrize(
    ("change", "still_cached"),
    [
        ({}, "all"),
        ({"tool_tag": "tool-v2"}, "nothing"),
        ({"extra_body": {"speed": "fast"}}, "tools only"),
        ({"citations": True}, "tools only"),
        ({"extra_tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools only"),
        ({"tool_choice": {"type": "auto"}}, "tools and system"),
        ({"image": True}, "tools and system"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "tools and system"),
    ],
    ids=[
        "nothing",
        "tool definition",
        "speed",
        "citations",
        "web search",
        "tool_choice",
        "images",
        "thinking",
    ],
)
def test_what_invalidates_what(api: Api, change: dict[str, Any], still_cached: str) -> None:
    base = {"citations": False} if "citations" in change else {}
    full = usage_of(api.create(**_layered(**base)))["write"]  # tool + 300 + 300
    levels = {"all": full, "tools and system": full - 300, "tools only": full - 600, "nothing": 0}
    assert usage_of(api.create(**_layered(**change)))["read"] == levels[still_cached]


# -- pre-warming ------------------------------------------------------------------------------------


def test_prewarm_with_max_tokens_0_bills_only_the_write(api: Api) -> None:
    params = {"system": [block(1100, "warm", mark=True)], "messages": user("later question")}
    warm = api.create(max_tokens=0, **params)
    assert warm.content == [] and warm.stop_reason == "max_tokens"
    u = usage_of(warm)
    assert (u["write"], u["input"], u["read"], u["output"]) == (1100, 0, 0, 0)
    price = capabilities().model(MODEL).prices.cache_write_5m
    assert control(api.emulator, "GET", "/_emulator/billing")["cost_usd"] == pytest.approx(1100 * price / 1e6)
    assert usage_of(api.create(**params))["read"] == 1100


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ({"stream": True}, "stream"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
            "output_config.format",
        ),
        ({"tools": [_BIG_TOOL], "tool_choice": {"type": "tool", "name": "lookup"}}, "a forced tool_choice"),
    ],
    ids=["stream", "thinking", "output format", "forced tool"],
)
def test_prewarm_refused_with(api: Api, extra: dict[str, Any], what: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        api.create(max_tokens=0, messages=user(), extra_body=extra)
    assert (
        err.value.body["error"]["message"] == f"max_tokens: 0 (cache pre-warming) cannot be used with {what}"
    )


def test_prewarm_refused_inside_a_batch(emulator: Any) -> None:
    from engine.emulator.errors import ApiError

    with pytest.raises(ApiError) as err:
        emulator.state.run_message("k", {"model": MODEL, "max_tokens": 0, "messages": user()}, tier="batch")
    assert err.value.status == 400 and "a message batch" in err.value.message
