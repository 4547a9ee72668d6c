"""The Messages API surface: replies, streaming, tools, structured output, errors, usage."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import anthropic
import httpx
import jsonschema
import pydantic
import pytest
from emulator_support import MODEL, OVERHEAD, Api, block, sync_client, text_of, usage_of

from engine.providers.anthropic.capabilities import capabilities

HEADERS = {"x-api-key": "raw-key", "anthropic-version": "2023-06-01"}


def post(emulator: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(emulator.base_url + path, json=body, headers=HEADERS if headers is None else headers)


def simple(text: str = "hello there", **kw: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 200, "messages": [{"role": "user", "content": text}], **kw}


# -- replies --------------------------------------------------------------------------------------


def test_reply_echoes_the_last_user_text_and_is_deterministic(api: Api) -> None:
    prompt = "Which invoice is overdue? " + "x" * 80
    first = api.create(
        messages=[
            {"role": "user", "content": "older"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": prompt},
        ],
        max_tokens=500,
    )
    text = first.content[0].text
    assert text.startswith("echo: " + prompt[:64]) and len(text) > len("echo: " + prompt[:64])
    again = api.create(messages=[{"role": "user", "content": prompt}], max_tokens=500)
    assert again.content[0].text == text and again.usage.output_tokens == first.usage.output_tokens
    assert first.stop_reason == "end_turn" and first.model == MODEL and first.id.startswith("msg_")


def test_max_tokens_is_honoured(api: Api) -> None:
    full = api.create(max_tokens=500, messages=[{"role": "user", "content": "tell me everything"}])
    assert full.usage.output_tokens > 5
    cut = api.create(max_tokens=5, messages=[{"role": "user", "content": "tell me everything"}])
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens <= 5
    assert full.content[0].text.startswith(cut.content[0].text)


def test_stop_sequence_ends_the_text(api: Api) -> None:
    m = api.create(messages=[{"role": "user", "content": "a b c"}], stop_sequences=["b"], max_tokens=500)
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == "b"
    assert m.content[0].text == "echo: a "


def test_count_tokens_equals_the_uncached_usage_total(api: Api) -> None:
    params = {
        "system": [block(1200, "s", mark=True)],
        "messages": [{"role": "user", "content": "how many?"}],
        "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
    }
    counted = api.count(**params)
    for _ in range(2):  # once writing, once reading: the total is the same
        u = usage_of(api.create(**params))
        assert u["input"] + u["read"] + u["write"] == counted


def _png(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


@pytest.mark.parametrize(("size", "tokens"), [((200, 150), 40), ((3136, 1568), 1568 * 784 // 750 + 1)])
def test_image_tokens_follow_the_documented_formula(api: Api, size: tuple[int, int], tokens: int) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _png(*size)}}
    with_image = api.count(messages=[{"role": "user", "content": [image, {"type": "text", "text": "abcd"}]}])
    assert with_image == tokens + 1 + OVERHEAD


# -- streaming ------------------------------------------------------------------------------------


def _events(emulator: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with httpx.stream("POST", emulator.base_url + "/v1/messages", json=body, headers=HEADERS) as r:
        assert r.headers["content-type"].startswith("text/event-stream") and r.headers["request-id"]
        raw = r.read().decode()
    out = []
    for chunk in raw.strip().split("\n\n"):
        name, data = chunk.split("\n", 1)
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_stream_follows_the_documented_event_sequence(emulator: Any) -> None:
    body = simple(system=[block(1100, "sys", mark=True)], stream=True)
    events = _events(emulator, body)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["usage"]["cache_creation_input_tokens"] == 1100 and start["usage"]["output_tokens"] == 1
    assert start["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 1100,
        "ephemeral_1h_input_tokens": 0,
    }
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert (
        final["usage"]["output_tokens"]
        == post(emulator, "/v1/messages", simple(system=body["system"])).json()["usage"]["output_tokens"]
    )
    assert text.startswith("echo: hello there")


def test_stream_through_the_sdk_matches_the_plain_reply(api: Api) -> None:
    client = sync_client(api.emulator)
    with client.messages.stream(**simple("stream me")) as stream:
        streamed = stream.get_final_message()
        deltas = list(stream.text_stream)
    plain = api.create(**simple("stream me"))
    assert streamed.content[0].text == plain.content[0].text
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert deltas == [] or "".join(deltas) == plain.content[0].text


def test_stream_tool_use_arrives_as_input_json_deltas(emulator: Any) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    body = simple("weather?", tools=[tool], tool_choice={"type": "tool", "name": "get_weather"}, stream=True)
    events = _events(emulator, body)
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start["type"] == "tool_use" and start["input"] == {}
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert jsonschema.validate(json.loads(partial), tool["input_schema"]) is None
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


# -- tools and structured output --------------------------------------------------------------------

SCHEMAS = [
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 3}},
        "required": ["city", "days"],
    },
    {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2},
            "when": {"type": "string", "format": "date-time"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number", "maximum": -5}]},
        },
        "required": ["tags"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string", "minLength": 12}},
                "required": ["sku"],
            }
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "ok": {"type": "boolean"},
            "kind": {"const": "order"},
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=["scalars", "enums-formats-anyof", "refs"])
@pytest.mark.parametrize("choice", [{"type": "tool", "name": "act"}, {"type": "any"}])
def test_forced_tool_choice_returns_valid_tool_input(
    api: Api, schema: dict[str, Any], choice: dict[str, Any]
) -> None:
    m = api.create(**simple("do it"), tools=[{"name": "act", "input_schema": schema}], tool_choice=choice)
    assert m.stop_reason == "tool_use" and m.content[0].type == "tool_use" and m.content[0].name == "act"
    jsonschema.validate(m.content[0].input, schema)


def test_auto_tool_choice_calls_a_tool_the_user_names(api: Api) -> None:
    tools = [{"name": "get_weather", "input_schema": SCHEMAS[0]}]
    called = api.create(**simple("use get_weather for Paris"), tools=tools)
    assert called.stop_reason == "tool_use"
    plain = api.create(**simple("just chat"), tools=tools)
    assert plain.stop_reason == "end_turn"
    after = api.create(
        model=MODEL,
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": "use get_weather"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "P", "days": 3},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    )
    assert after.stop_reason == "end_turn" and after.content[0].text.startswith("echo: sunny")


@pytest.mark.parametrize("schema", SCHEMAS, ids=["scalars", "enums-formats-anyof", "refs"])
def test_output_config_json_schema_reply_is_valid_json(api: Api, schema: dict[str, Any]) -> None:
    m = api.create(
        **simple("structured please"), output_config={"format": {"type": "json_schema", "schema": schema}}
    )
    jsonschema.validate(json.loads(m.content[0].text), schema)


class Invoice(pydantic.BaseModel):
    number: str
    total_cents: int
    paid: bool
    lines: list[str]
    note: str | None = None


def test_sdk_parse_with_a_pydantic_output_format(emulator: Any) -> None:
    parsed = sync_client(emulator).messages.parse(**simple("invoice"), output_format=Invoice)
    assert isinstance(parsed.parsed_output, Invoice)


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (
            {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            400,
            "invalid_request_error",
            "model: Field required",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "messages": []},
            400,
            "invalid_request_error",
            "messages: at least one message is required",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]},
            400,
            "invalid_request_error",
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (
            {
                "model": "claude-nonexistent-9",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
            },
            404,
            "not_found_error",
            "model: claude-nonexistent-9",
        ),
        (
            {**simple(), "system": [block(10, "s", ttl="2h")]},
            400,
            "invalid_request_error",
            "system.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            {
                **simple(),
                "tool_choice": {"type": "tool", "name": "nope"},
                "tools": [{"name": "a", "input_schema": {}}],
            },
            400,
            "invalid_request_error",
            "tool_choice.name: Tool 'nope' not found in tools",
        ),
    ],
    ids=["no model", "no max_tokens", "no messages", "bad role", "unknown model", "bad ttl", "unknown tool"],
)
def test_invalid_requests_get_documented_error_bodies(
    emulator: Any, body: dict[str, Any], status: int, kind: str, message: str
) -> None:
    r = post(emulator, "/v1/messages", body)
    assert r.status_code == status
    payload = r.json()
    assert payload == {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": r.headers["request-id"],
    }
    assert payload["request_id"].startswith("req_")


def test_sdk_maps_errors_to_its_exceptions(api: Api) -> None:
    with pytest.raises(anthropic.NotFoundError):
        api.create(**{**simple(), "model": "gpt-4o"})
    with pytest.raises(anthropic.BadRequestError):
        api.create(**{**simple(), "max_tokens": -1})


def test_api_key_is_required_and_bearer_is_accepted(emulator: Any) -> None:
    r = post(emulator, "/v1/messages", simple(), headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    ok = post(emulator, "/v1/messages", simple(), headers={"authorization": "Bearer tok"})
    assert ok.status_code == 200
    assert (
        post(emulator, "/v1/messages/count_tokens", {"model": MODEL, "messages": []}, headers={}).status_code
        == 401
    )


def test_request_id_header_on_every_response(emulator: Any) -> None:
    responses = [
        post(emulator, "/v1/messages", simple()),
        post(emulator, "/v1/messages", {"model": MODEL}),
        httpx.get(emulator.base_url + "/v1/nowhere"),
        httpx.get(emulator.base_url + "/v1/messages"),
        httpx.get(emulator.base_url + "/_emulator/billing"),
    ]
    ids = [r.headers.get("request-id", "") for r in responses]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)
    assert responses[2].status_code == 404 and responses[2].json()["error"]["type"] == "not_found_error"
    assert responses[3].status_code == 405


def test_bodies_over_32_mb_are_refused_with_413(emulator: Any) -> None:
    limit = int(capabilities().limits["messages_max_bytes"])
    huge = simple("x" * (limit + 10))
    r = post(emulator, "/v1/messages", huge)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    with pytest.raises(anthropic.RequestTooLargeError):
        sync_client(emulator).messages.count_tokens(model=MODEL, messages=huge["messages"])


def test_malformed_json_is_a_400(emulator: Any) -> None:
    r = httpx.post(emulator.base_url + "/v1/messages", content=b"{nope", headers=HEADERS)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_caches_are_isolated_per_api_key(api: Api) -> None:
    params = {
        "system": [block(1100, "shared", mark=True)],
        "messages": [{"role": "user", "content": text_of(3)}],
    }
    assert usage_of(api.create("tenant-1", **params))["write"] == 1100
    assert usage_of(api.create("tenant-2", **params))["read"] == 0
    assert usage_of(api.create("tenant-1", **params))["read"] == 1100


def test_usage_fields_add_up(api: Api) -> None:
    params = {
        "system": [block(1100, "s", ttl="1h"), block(200, "t", mark=True)],
        "messages": [{"role": "user", "content": "after the last marker"}],
    }
    u = usage_of(api.create(**params))
    assert u["input"] == 6 + OVERHEAD  # only what follows the last marker, and the fixed overhead
    assert u["w5m"] + u["w1h"] == u["write"] == 1300 and (u["w1h"], u["w5m"]) == (1100, 200)
    assert u["tier"] == "standard" and u["output"] > 0


def test_model_table_is_operator_data(emulator: Any, tmp_path: Any, monkeypatch: Any) -> None:
    override = tmp_path / "models.yaml"
    override.write_text(
        "models:\n  - family: claude-short-only\n    match: [claude-short-only]\n    min_cache_tokens: 2000\n"
        "    prices: {input: 3, cache_write_5m: 3.75, cache_write_1h: 6, cache_read: 0.3, output: 15}\n"
        "    ttl_1h: false\n"
    )
    monkeypatch.setenv("LLM_POLICY_MODELS", str(override))
    body = {**simple(), "model": "claude-short-only", "system": [block(10, "s", ttl="1h")]}
    r = post(emulator, "/v1/messages", body)
    assert r.status_code == 400
    assert (
        r.json()["error"]["message"] == "system.0.cache_control.ttl: ttl='1h' is not supported by this model"
    )
    assert post(emulator, "/v1/messages", {**body, "system": [block(10, "s", ttl="5m")]}).status_code == 200
    # the minimum cacheable length comes from the same data: 1500 tokens is below this family's 2000
    below = post(emulator, "/v1/messages", {**body, "system": [block(1500, "s", ttl="5m")]}).json()["usage"]
    assert (below["cache_creation_input_tokens"], below["input_tokens"]) == (
        0,
        1500 + 3 + OVERHEAD,
    )  # "hello there" is 3 tokens
    at = post(emulator, "/v1/messages", {**body, "system": [block(2000, "s", ttl="5m")]}).json()["usage"]
    assert at["cache_creation_input_tokens"] == 2000


def test_the_beta_client_path_works(emulator: Any) -> None:
    client = sync_client(emulator)
    m = client.beta.messages.create(**simple("beta route"), betas=["extended-cache-ttl-2025-04-11"])
    assert m.content[0].text.startswith("echo: beta route")
    counted = client.beta.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "beta route"}]
    )
    assert counted.input_tokens == 3 + OVERHEAD
