"""Fixtures for the adapter: policies written to temp files, engines on them, the emulator's URL."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.adapter import PolicyEngine
from engine.ledger import DecisionLog, JsonLinesSink, LoggingSink
from tests.compat import fresh_base_url

RULES_ALL_SITES = """\
    - name: indexing
      match: {callSite: "indexing.*"}
      cache: {mode: auto, ttl: 1h}
      batch: {mode: accumulate, maxRequests: 4, maxWait: 1s}
    - name: agent
      match: {callSite: "chat.*"}
      cache: {mode: explicit, ttl: 5m, breakpoints: [tools, system, history]}
    - name: bulk
      match: {callSite: "bulk.*"}
      batch: {mode: explicit}
"""


def policy_text(
    *, enabled: bool = True, rules: str = RULES_ALL_SITES, mode: str = "enforce", rollout: int = 100
) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: llm-policy/v1
        kind: OptimizationPolicy
        metadata: {{name: test-policy}}
        spec:
          enabled: {json.dumps(enabled)}
          mode: {mode}
          rollout: {rollout}
          rules:
        """
    ) + textwrap.indent(textwrap.dedent(rules), "  ")


@pytest.fixture
def anthropic_env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point ChatAnthropic (as PipesHub builds it, without base_url) at the emulator.

    Each test gets a base URL of its own, so a fresh shared httpx client (tests/compat.py).
    """
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fresh_base_url(emulator.base_url))
    emulator.state.config.update({"batch_latency_s": 0.1})  # restored by the emulator fixture
    monkeypatch.delenv("ANTHROPIC_API_URL", raising=False)
    return emulator


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., PolicyEngine]]:
    engines: list[PolicyEngine] = []

    def make(*, text: str | None = None, **kwargs: Any) -> PolicyEngine:
        """An engine on ``policy_text(**kwargs)``, or on a whole policy ``text``."""
        path = tmp_path / "policy.yaml"
        path.write_text(policy_text(**kwargs) if text is None else text, encoding="utf-8")
        engine = PolicyEngine.from_file(
            path,
            state=f"sqlite:///{tmp_path}/state.db",
            decision_log=DecisionLog(
                [LoggingSink(), JsonLinesSink(tmp_path / "decisions.jsonl", flush_interval=0)]
            ),
            batch_poll_interval=0.05,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close_polling()
        engine.log.close()


def decisions(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "decisions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def received(emulator: Any, last: int = 100) -> list[dict[str, Any]]:
    """What the emulator received (oldest first): tier, body, usage."""
    reply = httpx.get(f"{emulator.base_url}/_emulator/requests", params={"last": last})
    reply.raise_for_status()
    return list(reply.json()["data"])
