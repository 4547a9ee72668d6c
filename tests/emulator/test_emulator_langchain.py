"""``ChatAnthropic`` end to end against the emulator, only ``base_url`` changed."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from emulator_support import MODEL, OVERHEAD, text_of
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage

from tests.compat import fresh_base_url


def chat(emulator: Any, **kw: Any) -> ChatAnthropic:
    kw.setdefault("base_url", emulator.base_url)
    return ChatAnthropic(model=MODEL, api_key="lc-key", max_retries=0, **kw)


class Weather(pydantic.BaseModel):
    """Weather report for a city."""

    city: str
    celsius: int
    sunny: bool


def test_invoke(emulator: Any) -> None:
    reply = chat(emulator).invoke("what is the capital of France?")
    assert isinstance(reply, AIMessage) and str(reply.content).startswith(
        "echo: what is the capital of France?"
    )
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0


async def test_ainvoke_and_stream(emulator: Any) -> None:
    model = chat(emulator, base_url=fresh_base_url(emulator.base_url))
    plain = await model.ainvoke("stream this answer")
    chunks = [c async for c in model.astream("stream this answer")]
    assert len(chunks) > 2 and all(isinstance(c, AIMessageChunk) for c in chunks)
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.text == plain.text
    assert merged.usage_metadata is not None and plain.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == plain.usage_metadata["output_tokens"]
    assert merged.usage_metadata["input_tokens"] == plain.usage_metadata["input_tokens"]


def test_sync_stream(emulator: Any) -> None:
    text = "".join(c.text for c in chat(emulator).stream("hello stream"))
    assert text.startswith("echo: hello stream")


def test_bind_tools(emulator: Any) -> None:
    forced = chat(emulator).bind_tools([Weather], tool_choice="Weather")
    reply = forced.invoke("weather in Oslo")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "Weather"
    Weather.model_validate(reply.tool_calls[0]["args"])
    auto = chat(emulator).bind_tools([Weather])
    assert auto.invoke("nothing to call here").tool_calls == []
    assert auto.invoke("please call Weather for Oslo").tool_calls[0]["name"] == "Weather"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(emulator: Any, method: str) -> None:
    structured = chat(emulator).with_structured_output(Weather, method=method)
    result = structured.invoke("weather in Lima")
    assert isinstance(result, Weather)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_include_raw(emulator: Any, method: str) -> None:
    structured = chat(emulator).with_structured_output(Weather, method=method, include_raw=True)
    out = structured.invoke("weather in Quito")
    assert isinstance(out, dict) and out["parsing_error"] is None
    assert isinstance(out["parsed"], Weather) and isinstance(out["raw"], AIMessage)


def test_structured_output_from_a_dict_schema(emulator: Any) -> None:
    schema = {
        "title": "Pick",
        "type": "object",
        "properties": {"choice": {"type": "string", "enum": ["a", "b"]}},
        "required": ["choice"],
    }
    assert chat(emulator).with_structured_output(schema, method="json_schema").invoke("pick") == {
        "choice": "a"
    }


def test_usage_metadata_reports_cache_details(emulator: Any) -> None:
    model = chat(emulator)
    system = SystemMessage(
        content=[{"type": "text", "text": text_of(1100, "lc"), "cache_control": {"type": "ephemeral"}}]
    )
    first = model.invoke([system, HumanMessage("first")])
    second = model.invoke([system, HumanMessage("second")])
    d1 = first.usage_metadata["input_token_details"]  # type: ignore[index]
    d2 = second.usage_metadata["input_token_details"]  # type: ignore[index]
    # langchain-anthropic reports a write by TTL and zeroes the generic key when the split is given
    assert (d1["ephemeral_5m_input_tokens"], d1["ephemeral_1h_input_tokens"], d1["cache_read"]) == (
        1100,
        0,
        0,
    )
    assert first.usage_metadata["input_tokens"] == 1100 + 2 + OVERHEAD  # type: ignore[index]
    assert d2["cache_read"] == 1100 and d2["cache_creation"] == 0
    assert second.usage_metadata["input_tokens"] == 1100 + 2 + OVERHEAD  # type: ignore[index]
    streamed = None
    for chunk in model.stream([system, HumanMessage("third")]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.usage_metadata is not None
    assert streamed.usage_metadata["input_token_details"]["cache_read"] == 1100
