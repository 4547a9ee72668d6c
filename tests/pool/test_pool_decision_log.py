"""Calls pooled across replicas say in the decision log how full their batch was and how
long they waited in the pool, as calls pooled in one process do.

Two engines on one Redis stand for two replicas; each makes three pooled calls, and one
batch of six carries them all. Both sides are covered: the callers of the replica that
flushed (answered by its own batch) and those of the other (answered through the journal).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog, JsonLinesSink
from tests.adapter.conftest import policy_text
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model
from tests.compat import fresh_base_url

RULES = """\
- name: indexing
  match: {callSite: "indexing.*"}
  batch: {mode: accumulate, maxRequests: 6, maxWait: 30s}
"""
CONFIG = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}


def _replica(tmp_path: Path, name: str, state: str) -> PolicyEngine:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(rules=RULES), encoding="utf-8")
    log = DecisionLog([JsonLinesSink(tmp_path / f"{name}.jsonl", flush_interval=0)])
    return PolicyEngine.from_file(policy, state=state, decision_log=log, batch_poll_interval=0.05)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def test_calls_pooled_across_replicas_log_fill_and_wait(
    emulator: Any, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fresh_base_url(emulator.base_url))
    monkeypatch.delenv("ANTHROPIC_API_URL", raising=False)
    emulator.state.config.update({"batch_latency_s": 0.1})
    engines = [_replica(tmp_path, name, redis_url) for name in ("a", "b")]
    config = ai_model_config(models="claude-sonnet-4-6")
    models = [wrap_factory(get_generator_model, e)("anthropic", config) for e in engines]
    try:
        calls = [
            m.ainvoke(f"Summarise document {n}-{i}", config=CONFIG)
            for n, m in enumerate(models)
            for i in range(3)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*calls), 60)
    finally:
        for engine in engines:
            await engine.aclose()
            engine.log.close()
    assert all(a.response_metadata["usage"]["service_tier"] == "batch" for a in answers)
    records = [r for name in ("a", "b") for r in _records(tmp_path / f"{name}.jsonl")]
    assert len(records) == 6 and len({r["batch_id"] for r in records}) == 1  # one batch for both
    assert [r["pool_fill"] for r in records] == [6] * 6  # more than either replica holds
    assert all(r["pool_wait_ms"] is not None and r["pool_wait_ms"] >= 0 for r in records)
