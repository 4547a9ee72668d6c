"""A send that fails with no answer wrote nothing: its resend is weighed against the cache as it is."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anthropic
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog, JsonLinesSink
from tests.adapter.conftest import decisions, policy_text, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

RULES = """\
- name: agent
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: auto, breakpoints: [tools, system, history, last]}
"""
SYSTEM = "You are the organisation's agent; answer from its knowledge base. " * 120


@tool
def search(query: str) -> str:
    """Search the knowledge base."""
    return query


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_resend_of_a_refused_stream_checkpoints_one_short_block(
    anthropic_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six agent turns teach the engine the stream site's pauses (one follow-up in two after 15
    minutes). On the seventh, the streamed answer's first send is refused (nothing reached
    the API), and the caller resends a second later. The resend writes only the tool_use
    block at 1h: believing the refused send had written the conversation, it would have
    written the whole tool result at 1h as if that were free."""
    clock = anthropic_env.state.clock
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(rules=RULES), encoding="utf-8")
    engine = PolicyEngine.from_file(
        path,
        state=f"sqlite:///{tmp_path}/state.db",
        decision_log=DecisionLog([JsonLinesSink(tmp_path / "decisions.jsonl", flush_interval=0)]),
        clock=clock.now,
    )
    factory = wrap_factory(get_generator_model, engine)
    config = ai_model_config(models="claude-sonnet-4-6", apiKey="sk-ant-test")
    llm = factory("anthropic", config).bind_tools([search])
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    refused = factory("anthropic", config).bind_tools([search])
    monkeypatch.undo()

    def at(site: str) -> dict[str, Any]:
        return {"metadata": {"call_site": f"chat.agent.{site}"}}

    history: list[Any] = [SystemMessage(SYSTEM)]
    for turn in range(7):
        history.append(HumanMessage(f"Question {turn}: " + "what does the travel policy say " * 20))
        llm.invoke(history, config=at("complete"))
        call = {"name": "search", "args": {"query": f"q{turn}"}, "id": f"toolu_{turn}"}
        history += [AIMessage("", tool_calls=[call]), ToolMessage("passage " * 300, tool_call_id=call["id"])]
        if turn == 6:
            with pytest.raises(anthropic.APIConnectionError):
                list(refused.stream(history, config=at("stream")))
            clock.advance(1.0)
        list(llm.stream(history, config=at("stream")))
        history.append(AIMessage(f"Answer {turn}: " + "the policy says " * 40))
        clock.advance(40.0 if turn % 2 == 0 else 900.0)
    engine.log.close()
    resend = received(anthropic_env, last=1)[0]["usage"]["cache_creation"]["ephemeral_1h_input_tokens"]
    assert 0 < resend < 40, resend  # the tool_use block only
    records = decisions(tmp_path)
    assert (
        records[-2]["error"] and records[-1]["error"] is None
    )  # the refused send is logged, then the resend
    assert any("checkpoint at the history" in why for why in records[-1]["reasons"]), records[-1]["reasons"]
