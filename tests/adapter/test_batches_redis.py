"""The engine on a Redis journal (``LLM_POLICY_STATE=redis://...``): pooled calls go through
Redis and answer as direct calls do; Redis unreachable, they go direct and the cause is
logged once."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import realservers

from engine.adapter import PolicyEngine, wrap_factory
from engine.adapter.engine import JOURNAL_ENV
from engine.journal import open_journal
from engine.ledger import DecisionLog
from tests.adapter.conftest import policy_text, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

session_loop = pytest.mark.asyncio(loop_scope="session")
RULES = """\
- name: indexing
  match: {callSite: "indexing.*"}
  batch: {mode: accumulate, maxRequests: 3, maxWait: 30s}
"""
CONFIG = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}


def _engine(tmp_path: Path) -> PolicyEngine:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(rules=RULES), encoding="utf-8")
    return PolicyEngine.from_file(path, decision_log=DecisionLog([]), batch_poll_interval=0.05)


def _model(engine: PolicyEngine) -> Any:
    return wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models="claude-sonnet-4-6"))


@session_loop
async def test_pooled_calls_go_through_the_redis_journal_the_url_names(
    anthropic_env: Any, redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{redis_server.url}?namespace=engine-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(JOURNAL_ENV, url)
    engine = _engine(tmp_path)
    assert engine.state == url
    llm = _model(engine)
    prompts = [f"Summarise document {i}" for i in range(3)]
    pooled = await asyncio.gather(*(llm.ainvoke(p, config=CONFIG) for p in prompts))
    await engine.aclose()
    assert all(m.response_metadata["usage"]["service_tier"] == "batch" for m in pooled)
    assert [e["tier"] for e in received(anthropic_env)] == ["batch"] * 3
    journal = open_journal(url)
    assert journal.counts() == {"succeeded": 3}  # type: ignore[attr-defined]
    journal.close()


@pytest.fixture(params=["refused", "silent"])
def dead_redis(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis URL nobody answers: nothing listens, or a socket that accepts and never replies."""
    if request.param == "refused":
        yield f"redis://127.0.0.1:{realservers.free_port()}/0"
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing is ever read or written
        yield f"redis://127.0.0.1:{silent.getsockname()[1]}/0?socket_timeout=0.5"


@session_loop
async def test_unreachable_or_silent_redis_sends_pooled_calls_direct_and_says_so_once(
    anthropic_env: Any,
    dead_redis: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(JOURNAL_ENV, dead_redis)
    engine = _engine(tmp_path)
    llm = _model(engine)
    with caplog.at_level(logging.WARNING):
        answers = [await llm.ainvoke(f"Summarise report {i}", config=CONFIG) for i in range(3)]
    await engine.aclose()
    assert all(m.response_metadata["usage"]["service_tier"] == "standard" for m in answers)
    assert [e["tier"] for e in received(anthropic_env)] == ["standard"] * 3
    warnings = [r for r in caplog.records if "calls go direct" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
