"""The engine's clock: what ``ttl: auto`` and the decision log see as the time.

A benchmark or test that moves the emulator's clock gives the engine the same clock,
so the gaps the engine measures between calls are the ones the cache lives through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog, JsonLinesSink
from tests.adapter.conftest import decisions, policy_text
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

RULES = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: auto, breakpoints: [system, history, last]}
"""
SYSTEM = "You answer questions about the travel policy, citing its sections. " * 60


class SteppingClock:
    """Starts at 2027-01-15T08:00:00Z; the conversation moves it ``step`` seconds a turn."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1_800_000_000.0, step

    def __call__(self) -> float:
        return self.now


def _conversation(tmp_path: Path, clock: SteppingClock) -> list[dict[str, Any]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(rules=RULES), encoding="utf-8")
    log = DecisionLog([JsonLinesSink(tmp_path / "decisions.jsonl", flush_interval=0)])
    engine = PolicyEngine.from_file(policy, decision_log=log, clock=clock)
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models="claude-sonnet-4-6"))
    history: list[tuple[str, str]] = [("system", SYSTEM)]
    for turn in range(6):
        history.append(("user", f"Question {turn}: may I book business class for {turn + 3} hours?"))
        reply = llm.invoke(history, config={"metadata": {"call_site": "chat.agent.complete"}})
        history.append(("assistant", str(reply.content)))
        clock.now += clock.step
    return decisions(tmp_path)


def test_the_decision_log_tells_time_by_the_engine_clock(anthropic_env: Any, tmp_path: Path) -> None:
    records = _conversation(tmp_path, SteppingClock(step=90.0))
    assert [r["time"] for r in records[:3]] == [
        "2027-01-15T08:00:00.000Z",
        "2027-01-15T08:01:30.000Z",
        "2027-01-15T08:03:00.000Z",
    ]


def test_ttl_auto_measures_gaps_on_the_engine_clock(anthropic_env: Any, tmp_path: Path) -> None:
    # Ten-minute pauses on the engine's clock: the newest turn is written for an hour;
    # a few seconds between turns: five minutes is enough. Real time is the same in both.
    slow = _conversation(tmp_path / "slow", SteppingClock(step=600.0))
    fast = _conversation(tmp_path / "fast", SteppingClock(step=5.0))
    newest = lambda record: record["markers"][-1]["ttl"]  # noqa: E731
    assert newest(slow[-1]) == "1h"
    assert newest(fast[-1]) == "5m"
