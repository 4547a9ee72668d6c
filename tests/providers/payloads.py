"""Hypothesis strategies for Anthropic request payloads (shared by the allocator tests)."""

from __future__ import annotations

import base64
import struct
from typing import Any

from hypothesis import strategies as st

MODEL = "claude-sonnet-4-6"  # 1024-token minimum in the data file

_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 800, 600) + b"\x08\x02\x00\x00\x00"
PNG_B64 = base64.b64encode(_PNG).decode()

markers = st.one_of(
    st.none(),
    st.just({"type": "ephemeral"}),
    st.just({"type": "ephemeral", "ttl": "5m"}),
    st.just({"type": "ephemeral", "ttl": "1h"}),
)


def _with_marker(block: dict[str, Any], marker: dict[str, Any] | None) -> dict[str, Any]:
    return block if marker is None else {**block, "cache_control": marker}


# Short words repeated: texts long enough to cross the minimum sometimes, cheap to generate.
texts = st.builds(
    lambda word, n: (word + " ") * n, st.sampled_from(["alpha", "beta", "gamma", ""]), st.integers(0, 900)
)


@st.composite
def text_block(draw: st.DrawFn) -> dict[str, Any]:
    return _with_marker({"type": "text", "text": draw(texts)}, draw(markers))


@st.composite
def image_block(draw: st.DrawFn) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "image/png", "data": PNG_B64}
    return _with_marker({"type": "image", "source": source}, draw(markers))


@st.composite
def thinking_block(draw: st.DrawFn) -> dict[str, Any]:
    block = draw(
        st.sampled_from(
            [{"type": "thinking", "thinking": "considering " * 50, "signature": "sig"},
             {"type": "redacted_thinking", "data": "opaque"}]
        )
    )  # fmt: skip
    return _with_marker(block, draw(markers))


@st.composite
def tool_use_block(draw: st.DrawFn) -> dict[str, Any]:
    tid = f"toolu_{draw(st.integers(0, 99))}"
    return _with_marker(
        {"type": "tool_use", "id": tid, "name": "lookup", "input": {"q": draw(texts)}}, draw(markers)
    )


@st.composite
def tool_result_block(draw: st.DrawFn) -> dict[str, Any]:
    content: Any = draw(
        st.one_of(texts, st.lists(st.one_of(text_block(), image_block()), min_size=1, max_size=3))
    )
    block = {"type": "tool_result", "tool_use_id": f"toolu_{draw(st.integers(0, 99))}", "content": content}
    return _with_marker(block, draw(markers))


def _content(blocks: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.one_of(texts, st.lists(blocks, min_size=1, max_size=4))


@st.composite
def messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    turns = draw(st.integers(1, 6))
    out: list[dict[str, Any]] = []
    for t in range(turns):
        if t % 2 == 0:
            blocks = st.one_of(text_block(), image_block(), tool_result_block())
            out.append({"role": "user", "content": draw(_content(blocks))})
        else:
            blocks = st.one_of(text_block(), thinking_block(), tool_use_block())
            out.append({"role": "assistant", "content": draw(_content(blocks))})
    return out


@st.composite
def tools(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 3))
    return [
        _with_marker(
            {"name": f"tool_{i}", "description": draw(texts), "input_schema": {"type": "object"}},
            draw(markers),
        )
        for i in range(n)
    ]


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": draw(messages())}
    tool_list = draw(tools())
    if tool_list:
        payload["tools"] = tool_list
    system = draw(st.one_of(st.none(), texts, st.lists(text_block(), min_size=1, max_size=3)))
    if system:
        payload["system"] = system
    top = draw(st.one_of(st.none(), st.none(), markers))
    if top is not None:
        payload["cache_control"] = top
    return payload
