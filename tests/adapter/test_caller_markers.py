"""Markers the caller set (PipesHub's agent transport marks its system block and big tool results)
are kept and counted: the emulator never receives more than 4, nor a 1h after a 5m."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from engine.adapter import PolicyEngine, wrap_factory
from engine.providers.anthropic.blocks import iter_blocks
from tests.adapter.conftest import decisions, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

EPHEMERAL_5M = {"type": "ephemeral", "ttl": "5m"}
TOOLS = [
    {"name": f"tool_{i}", "description": "A tool. " * 60, "input_schema": {"type": "object"}}
    for i in range(3)
]


def _text(text: str, marked: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    return {**block, "cache_control": EPHEMERAL_5M} if marked else block


def conversation(caller_markers: int) -> list[Any]:
    """An agent turn with up to four caller-set 5m markers (system, then three tool results)."""
    messages: list[Any] = [SystemMessage(content=[_text("Agent rules. " * 400, caller_markers >= 1)])]
    for i in range(3):
        messages.append(HumanMessage(f"question {i}"))
        call = {"name": "tool_0", "args": {}, "id": f"toolu_{i}"}
        messages.append(AIMessage(content="", tool_calls=[call]))
        content = [_text(f"Tool output {i}. " * 300, caller_markers >= i + 2)]
        messages.append(ToolMessage(content=content, tool_call_id=f"toolu_{i}"))
    messages.append(HumanMessage("and now?"))
    return messages


RULES = """\
- name: agent
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 1h, breakpoints: [tools, system, history, last]}
"""


@pytest.mark.parametrize("caller_markers", [0, 1, 2, 4])
def test_caller_markers_kept_never_more_than_four_nor_1h_after_5m(
    caller_markers: int, make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    llm = wrap_factory(get_generator_model, make_engine(rules=RULES))("anthropic", ai_model_config())
    bound = llm.bind_tools(TOOLS)
    for _ in range(2):
        bound.invoke(conversation(caller_markers), config={"metadata": {"call_site": "chat.agent.complete"}})
    sent = received(anthropic_env)[-1]["body"]
    markers = [(b.dotted, b.cache_control) for b in iter_blocks(sent) if b.cache_control is not None]
    assert len(markers) <= 4
    ttls = [marker.get("ttl", "5m") for _, marker in markers]
    assert "1h" not in ttls[ttls.index("5m") :] if "5m" in ttls else True
    caller_paths = {m["path"] for m in decisions(tmp_path)[-1]["markers"] if m["source"] == "caller"}
    assert len(caller_paths) == caller_markers
    assert caller_paths <= {path for path, _ in markers}  # every caller marker is still there
    if caller_markers == 4:
        assert all(
            m["source"] == "caller" for m in decisions(tmp_path)[-1]["markers"] if m["action"] != "dropped"
        )
    usage = received(anthropic_env)[-1]["usage"]
    assert usage["cache_read_input_tokens"] > 0
