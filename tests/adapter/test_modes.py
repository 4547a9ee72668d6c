"""Rollout by request hash, and a policy switched off under models already built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.conftest import decisions, policy_text, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

SYSTEM = "House rules for every answer. " * 300
RULES = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 5m, breakpoints: [system]}
"""
CALL = {"metadata": {"call_site": "chat.simple_mode"}}


def _llm(engine: PolicyEngine) -> Any:
    return wrap_factory(get_generator_model, engine)("anthropic", ai_model_config())


def test_rollout_applies_to_a_stable_share_of_requests(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    llm = _llm(make_engine(rules=RULES, rollout=50))
    questions = [f"question number {i}" for i in range(40)]
    for _ in range(2):  # the same request lands in the same bucket every time
        for q in questions:
            llm.invoke([("system", SYSTEM), ("user", q)], config=CALL)
    marked = ["cache_control" in json.dumps(e["body"]) for e in received(anthropic_env, 80)]
    assert marked[:40] == marked[40:]
    assert 8 <= sum(marked[:40]) <= 32  # about half, by hash
    outside = [r for r in decisions(tmp_path) if not r["applied"]]
    assert outside and all("outside the 50% rollout: sent unchanged" in r["reasons"] for r in outside)


def test_models_already_built_pass_through_once_the_policy_is_off(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    engine = make_engine(rules=RULES)
    llm = _llm(engine)
    retrying = llm.with_retry(stop_after_attempt=2)
    retrying.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    (tmp_path / "policy.yaml").write_text(policy_text(enabled=False, rules=RULES), encoding="utf-8")
    assert engine.reload() and not engine.enabled
    retrying.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    bodies = [e["body"] for e in received(anthropic_env)]
    assert ["cache_control" in json.dumps(b) for b in bodies] == [True, False]
    assert len(decisions(tmp_path)) == 1  # off: nothing decided, nothing logged
