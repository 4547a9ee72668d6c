"""A record's stand-in request gets its markers where the real request would."""

from __future__ import annotations

from typing import Any

import pytest

from engine.decision import CachePlan
from engine.plan import record_from_payload, stand_in_payload
from engine.plan._place import _markers_of, peer_placer
from engine.providers.anthropic.blocks import iter_blocks
from engine.providers.anthropic.caching import BreakpointAllocator

LONG = "policy text " * 400


def _agent_payload(turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"question {t} " * 50})
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"let me look {t}"},
                    {"type": "tool_use", "id": f"toolu_{t}", "name": "lookup", "input": {"q": t}},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{t}",
                        "content": [{"type": "text", "text": "row " * 80}],
                    },
                ],
            }
        )
    messages.append({"role": "user", "content": "and now?"})
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "tools": [{"name": "lookup", "description": LONG, "input_schema": {"type": "object"}}],
        "system": [{"type": "text", "text": LONG}],
        "messages": messages,
    }


def _positions(payload: dict[str, Any]) -> list[tuple[int, str]]:
    return [
        (i, b.cache_control.get("ttl", "5m")) for i, b in enumerate(iter_blocks(payload)) if b.cache_control
    ]


@pytest.mark.parametrize(
    "anchors", [("system",), ("tools", "system"), ("tools", "system", "history", "last")]
)
@pytest.mark.parametrize("turns", [0, 1, 3])
def test_explicit_anchors_land_on_the_same_positions(anchors: Any, turns: int) -> None:
    payload = _agent_payload(turns)
    plan = CachePlan(mode="explicit", ttl="1h", breakpoints=anchors)
    real = BreakpointAllocator().apply(payload, plan, call_site="chat.agent.complete", now=100.0)
    record = record_from_payload(payload, ts=100.0, call_site="chat.agent.complete", output_tokens=1)
    stand_in = BreakpointAllocator().apply(
        stand_in_payload(record), plan, call_site="chat.agent.complete", now=100.0
    )
    assert _positions(stand_in.payload) == _positions(real.payload)
    markers = _markers_of(stand_in.payload, record)
    assert [(i, m) for i, m in enumerate(markers) if m] == _positions(real.payload)


def test_stand_in_has_the_records_sizes_and_no_text_of_the_request() -> None:
    payload = _agent_payload(2)
    record = record_from_payload(payload, ts=0.0, call_site="s", output_tokens=1)
    stand_in = stand_in_payload(record)
    # a markable position of 0 tokens (a tool_result's closing position) stands in as 1 token
    assert [b.tokens for b in iter_blocks(stand_in)] == [max(1, b.tokens) for b in record.blocks]
    assert "policy text" not in str(stand_in) and "question" not in str(stand_in)


def test_langchain_peer_tags_tools_system_and_the_last_block() -> None:
    record = record_from_payload(_agent_payload(1), ts=0.0, call_site="s", output_tokens=1)
    markers = peer_placer("langchain-middleware")(record).markers
    assert [i for i, m in enumerate(markers) if m] == [0, 1, len(record.blocks) - 1]
    litellm = peer_placer("litellm-system")(record).markers
    assert [i for i, m in enumerate(litellm) if m] == [1]
