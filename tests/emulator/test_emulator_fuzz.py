"""No input knocks the emulator over: generated requests get a valid reply or a 4xx with a body.

A property test throws generated ``/v1/messages`` (and ``count_tokens``) bodies, valid
and invalid, at the ASGI app and checks: a 200 parses as the SDK's ``Message`` (or
its event stream), a 4xx carries the documented error body, and nothing answers 5xx
(no fault is injected here). The default run keeps the count small; the full run
(``pytest -m slow tests/emulator/test_emulator_fuzz.py``) throws 10,000.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from anthropic.types import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from engine.emulator.app import build_app
from engine.emulator.config import EmulatorConfig
from engine.emulator.errors import ERROR_TYPES
from engine.emulator.state import EmulatorState

HEADERS = {"x-api-key": "fuzz", "anthropic-version": "2023-06-01"}
FULL = int(os.environ.get("EMULATOR_FUZZ_EXAMPLES", "10000"))
MODELS = [
    "claude-sonnet-4-6",
    "claude-opus-4-7",
    "claude-haiku-3",
    "claude-sonnet-4-5",
    "no-such-model",
    "",
    7,
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
marker = st.one_of(
    st.just({"type": "ephemeral"}),
    st.builds(lambda t: {"type": "ephemeral", "ttl": t}, st.sampled_from(["5m", "1h", "2h"])),
    json_any,
)
schema = st.one_of(
    st.just({"type": "object", "properties": {"s": {"type": "string", "minLength": 10**12}}}),
    st.just({"type": "object", "properties": {"a": {"type": "array", "minItems": 10**12, "items": {}}}}),
    st.just(
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "array", "minItems": 999999, "items": {"$ref": "#"}}}}
    ),
    st.just({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1e308}}}),
    st.just({"type": "object"}),
    st.dictionaries(
        st.sampled_from(["type", "properties", "items", "minItems", "enum", "$ref", "anyOf"]), json_any
    ),
)
text_block = st.builds(
    lambda t, m: {"type": "text", "text": t, **({"cache_control": m} if m is not None else {})},
    st.text(max_size=30),
    st.none() | marker,
)
other_block = st.one_of(
    st.builds(
        lambda i: {"type": "tool_use", "id": i, "name": "t", "input": {}}, st.sampled_from(["toolu_1", "x"])
    ),
    st.builds(
        lambda i, c: {"type": "tool_result", "tool_use_id": i, "content": c},
        st.sampled_from(["toolu_1", "y"]),
        st.text(max_size=10) | st.lists(text_block, max_size=2),
    ),
    st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "sig"}, st.text(max_size=10)),
    st.just({"type": "redacted_thinking", "data": "abc"}),
    st.just(
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "grass is green"},
            "citations": {"enabled": True},
        }
    ),
    st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!!"}}),
    json_any,
)
content = st.one_of(st.text(max_size=40), st.lists(st.one_of(text_block, other_block), max_size=4), json_any)
message = st.builds(
    lambda r, c: {"role": r, "content": c}, st.sampled_from(["user", "assistant", "system"]), content
)
tool = st.one_of(
    st.builds(lambda s: {"name": "t", "input_schema": s}, schema),
    st.just({"type": "web_search_20250305", "name": "web_search"}),
    st.just({"type": "bash_20250124", "name": "bash"}),
    json_any,
)
optional = {
    "system": st.text(max_size=20) | st.lists(text_block, max_size=3) | json_any,
    "tools": st.lists(tool, max_size=3) | json_any,
    "tool_choice": st.sampled_from(
        [
            {"type": "auto"},
            {"type": "any"},
            {"type": "tool", "name": "t"},
            {"type": "tool", "name": "web_search"},
            {"type": "none"},
        ]
    )
    | json_any,
    "thinking": st.sampled_from(
        [
            {"type": "enabled", "budget_tokens": 1024},
            {"type": "adaptive"},
            {"type": "disabled"},
            {"type": "enabled", "budget_tokens": 10**9},
        ]
    )
    | json_any,
    "output_config": st.sampled_from([{"effort": "low"}, {"effort": "max"}, {"effort": "x"}])
    | st.builds(lambda s: {"format": {"type": "json_schema", "schema": s}}, schema),
    "temperature": json_leaf,
    "top_p": json_leaf,
    "top_k": json_leaf,
    "stop_sequences": st.lists(st.text(max_size=5), max_size=3) | json_any,
    "stream": st.booleans() | json_leaf,
    "cache_control": marker,
    "metadata": json_any,
    "diagnostics": st.builds(lambda i: {"previous_message_id": i}, st.none() | st.text(max_size=10)),
    "extra_headers": json_any,
    "timeout": json_leaf,
}
request = st.builds(
    lambda model, max_tokens, messages, extras: {
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
        **extras,
    },
    st.sampled_from(MODELS),
    st.one_of(st.integers(-5, 70_000), st.sampled_from([0, 1, 4096, 10**12]), json_leaf),
    st.lists(message, min_size=0, max_size=4) | json_any,
    st.fixed_dictionaries({}, optional=optional),
)


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(build_app(EmulatorState(EmulatorConfig())), raise_server_exceptions=False) as c:
        yield c


def _check(client: TestClient, path: str, body: Any) -> None:
    reply = client.post(path, json=body, headers=HEADERS)
    assert reply.status_code < 500, (reply.status_code, reply.text[:500], body)
    if reply.status_code >= 400:
        payload = reply.json()
        assert payload["type"] == "error" and payload["request_id"].startswith("req_")
        assert payload["error"]["type"] == ERROR_TYPES[reply.status_code] and payload["error"]["message"]
    elif path.endswith("count_tokens"):
        assert isinstance(reply.json()["input_tokens"], int)
    elif reply.headers["content-type"].startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]
        assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    else:
        message = Message.model_validate(reply.json())
        assert message.usage.output_tokens <= max(int(body["max_tokens"]), 0)
        assert len(reply.content) < 64 * 1024 + 8 * int(body["max_tokens"])


def _property(client: TestClient, body: dict[str, Any]) -> None:
    _check(client, "/v1/messages", body)
    counted = {k: v for k, v in body.items() if k != "max_tokens"}
    _check(client, "/v1/messages/count_tokens", counted)


_COMMON = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}


@settings(max_examples=300, **_COMMON)
@given(body=request)
def test_generated_requests_never_get_a_5xx(client: TestClient, body: dict[str, Any]) -> None:
    _property(client, body)


@pytest.mark.slow
@settings(max_examples=FULL, **_COMMON)
@given(body=request)
def test_generated_requests_never_get_a_5xx_full_run(client: TestClient, body: dict[str, Any]) -> None:
    _property(client, body)


def test_a_tiny_request_asking_for_a_huge_instance_is_bounded_by_max_tokens(client: TestClient) -> None:
    """The 280-byte request that once grew a 22 GB string: the reply is cut at max_tokens."""
    for prop in ({"type": "string", "minLength": 10**12}, {"type": "array", "minItems": 10**12, "items": {}}):
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "go"}],
            "tools": [{"name": "t", "input_schema": {"type": "object", "properties": {"p": prop}}}],
            "tool_choice": {"type": "tool", "name": "t"},
        }
        assert len(json.dumps(body)) < 300
        reply = client.post("/v1/messages", json=body, headers=HEADERS)
        assert reply.status_code == 200
        message = Message.model_validate(reply.json())
        assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 1024
        assert len(reply.content) < 8 * 1024 + 1024
