"""PipesHub compatibility on the emulator: every call pattern, engine off, shadow and on.

- Off for the call (no rule matches it, or shadow mode): the emulator receives exactly
  the request bodies the unwrapped model sends, and the answers are the same.
- On (a caching rule): the same answers, and from the second call on the cache reads
  show in ``usage_metadata`` (seen through LangChain callbacks, as any handler sees them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic

from engine.adapter import PolicyEngine, wrap_factory
from engine.providers.anthropic.blocks import iter_blocks
from tests.adapter.conftest import decisions, received
from tests.adapter.patterns import PATTERNS, Pattern, UsageCollector
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

MODEL = "claude-sonnet-4-6"

# One event loop for the module, as in a PipesHub service: langchain_anthropic shares its
# httpx client between models, and a client left on a closed loop retries its first call.
pytestmark = pytest.mark.asyncio(loop_scope="session")

NO_MATCH = """\
- name: elsewhere
  match: {callSite: "nowhere.*"}
  cache: {mode: auto, ttl: 1h}
"""

CACHE_ALL = """\
- name: indexing
  match: {callSite: ["indexing.*", "retrieval.*"]}
  cache: {mode: explicit, ttl: 1h, breakpoints: [tools, system]}
- name: chat
  match: {callSite: ["chat.*", "health.*"]}
  cache: {mode: explicit, ttl: 5m, breakpoints: [tools, system, history]}
"""


def _unwrapped() -> ChatAnthropic:
    return get_generator_model("anthropic", ai_model_config(models=MODEL))  # type: ignore[return-value]


def _wrapped(engine: PolicyEngine) -> Any:
    return wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models=MODEL))


def _bodies(emulator: Any) -> list[str]:
    """The distinct request bodies received (key order kept), sorted: concurrent calls arrive in any
    order, and the SDK resends the same bytes when a pooled connection from a closed loop fails."""
    return sorted({json.dumps(entry["body"]) for entry in received(emulator)})


async def _run(pattern: Pattern, llm: Any, collector: UsageCollector | None = None) -> Any:
    config: dict[str, Any] = {"metadata": {"call_site": pattern.call_site}}
    if collector is not None:
        config["callbacks"] = [collector]
    return await pattern.run(llm, config)


async def _baseline(pattern: Pattern, emulator: Any) -> tuple[Any, list[str]]:
    answer = await _run(pattern, _unwrapped())
    bodies = _bodies(emulator)
    emulator.state.reset()
    return answer, bodies


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
async def test_no_rule_matches_sends_the_unwrapped_request(
    pattern: Pattern, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, bodies = await _baseline(pattern, anthropic_env)
    llm = _wrapped(make_engine(rules=NO_MATCH))
    assert type(llm) is not ChatAnthropic and isinstance(llm, ChatAnthropic)
    assert await _run(pattern, llm) == answer
    assert _bodies(anthropic_env) == bodies
    records = decisions(tmp_path)
    assert records and all(r["rule"] is None and not r["applied"] for r in records)
    assert {r["call_site"] for r in records} == {pattern.call_site}


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
async def test_shadow_mode_sends_the_unwrapped_request(
    pattern: Pattern, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, bodies = await _baseline(pattern, anthropic_env)
    llm = _wrapped(make_engine(rules=CACHE_ALL, mode="shadow"))
    assert await _run(pattern, llm) == answer
    assert _bodies(anthropic_env) == bodies
    records = decisions(tmp_path)
    assert records and all(r["policy"]["mode"] == "shadow" and not r["applied"] for r in records)
    if pattern.cacheable:  # what enforce mode would have placed is logged
        assert all(any(m["source"] == "engine" for m in r["markers"]) for r in records)


def _marker_rules_hold(body: dict[str, Any]) -> None:
    ttls = [b.cache_control.get("ttl", "5m") for b in iter_blocks(body) if b.cache_control is not None]
    assert len(ttls) <= 4
    assert "1h" not in ttls[ttls.index("5m") :] if "5m" in ttls else True


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
async def test_caching_rule_same_answers_and_cache_reads(
    pattern: Pattern, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, _ = await _baseline(pattern, anthropic_env)
    llm = _wrapped(make_engine(rules=CACHE_ALL))
    first, second = UsageCollector(), UsageCollector()
    assert await _run(pattern, llm, first) == answer
    assert await _run(pattern, llm, second) == answer
    assert first.usages and second.usages
    for entry in received(anthropic_env):
        _marker_rules_hold(entry["body"])
    if pattern.cacheable:
        assert all(u["input_token_details"].get("cache_read", 0) > 0 for u in second.usages)
        records = decisions(tmp_path)
        assert all(r["applied"] and r["usage"] is not None for r in records)
        assert records[-1]["cost"]["realized_usd"] < records[-1]["cost"]["counterfactual_usd"]
    else:  # below the model's minimum: nothing worth marking, sent as is
        assert all(u["input_token_details"].get("cache_read", 0) == 0 for u in second.usages)
