"""The decision log says why a call missed the cache, on real traffic through the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from engine.adapter import PolicyEngine, wrap_factory
from engine.cli import main
from tests.adapter.conftest import decisions
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

RULES = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 5m, breakpoints: [system]}
"""
SYSTEM = "You answer questions about the travel policy, citing its sections. " * 90


def test_log_names_cold_invalidated_and_expired_misses(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    ahead = [0.0]
    engine = make_engine(rules=RULES)
    engine.clock = lambda: time.time() + ahead[0]  # the emulator's clock, moved below
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models="claude-sonnet-4-6"))
    site = {"metadata": {"call_site": "chat.agent.complete"}}
    llm.invoke([("system", SYSTEM), ("user", "Business class?")], config=site)
    llm.invoke([("system", SYSTEM), ("user", "Economy?")], config=site)
    llm.invoke([("system", SYSTEM + " Be brief."), ("user", "Economy?")], config=site)
    httpx.post(f"{anthropic_env.base_url}/_emulator/clock", json={"advance_s": 400}).raise_for_status()
    ahead[0] = 400.0
    llm.invoke([("system", SYSTEM + " Be brief."), ("user", "Trains?")], config=site)
    engine.log.flush()
    records = decisions(tmp_path)
    misses = [(r["cache_miss"] or {}).get("cause") for r in records]
    assert misses == ["cold", None, "invalidated", "ttl-expired"]
    assert records[2]["cache_miss"]["detail"] == "system changed (block 0)"
    assert "5m entry expired" in records[3]["cache_miss"]["detail"]
    assert all(r["cache_miss"]["cost_usd"] > 0 for r in records[2:])
    assert main(["doctor", "--log", str(tmp_path / "decisions.jsonl")]) == 0


def test_the_apis_own_cache_miss_reason_is_used_when_given(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    engine = make_engine(rules=RULES)
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models="claude-sonnet-4-6"))
    site = {"metadata": {"call_site": "chat.agent.complete"}}
    first = llm.invoke([("system", SYSTEM), ("user", "Business class?")], config=site)
    asking = llm.bind(extra_body={"diagnostics": {"previous_message_id": first.response_metadata["id"]}})
    asking.invoke([("system", SYSTEM + " Be brief."), ("user", "Business class?")], config=site)
    engine.log.flush()
    miss = decisions(tmp_path)[-1]["cache_miss"]
    assert miss["cause"] == "api" and "system_changed" in miss["detail"]
