"""``llm-policy demo`` (small scale) and the workload generators it runs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.bench.workloads import build_workload
from engine.cli import main
from engine.providers.anthropic.tokens import text_tokens


def test_demo_prints_before_and_after_with_a_saving(capsys: Any) -> None:
    assert main(["demo", "--scale", "0.05"]) == 0
    out = capsys.readouterr().out
    for row in (
        "calls",
        "input tokens",
        "cache write tokens",
        "cache read tokens",
        "output tokens",
        "batch share",
        "dollars",
        "savings",
    ):
        assert row in out
    saving = re.search(r"│ savings\s*│\s*│\s*([0-9.]+)%", out)
    assert saving is not None and float(saving.group(1)) > 0


def test_live_demo_needs_an_api_key_and_sends_nothing_without_it(capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["demo", "--live"]) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_workloads_are_seeded_and_sized_as_documented() -> None:
    first, again = build_workload("indexing", scale=0.05), build_workload("indexing", scale=0.05)
    assert [c.messages for c in first.calls] == [c.messages for c in again.calls]
    assert len(first.calls) == 50 and {c.latency for c in first.calls} == {"awaitable"}
    system, doc = first.calls[0].messages
    assert 4000 <= text_tokens(str(system.content)) <= 4600 and 1400 <= text_tokens(str(doc.content)) <= 2600
    agent = build_workload("agent", scale=0.04)
    assert {c.call_site for c in agent.calls} == {"chat.agent.complete", "chat.agent.stream"}
    assert len({c.group for c in agent.calls}) == 2
    retrieval = build_workload("retrieval", scale=0.01)
    assert len(retrieval.calls) == 20 and all(c.latency == "interactive" for c in retrieval.calls)


def test_an_unknown_workload_is_named() -> None:
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        build_workload("nope")


def test_live_demo_takes_the_real_code_path_to_whatever_base_url_is_set(
    capsys: Any, monkeypatch: Any, tmp_path: Any, emulator: Any
) -> None:
    # The live run differs from production only by its base URL: pointed at the
    # emulator it must price the sample, then send both arms through the same SDK.
    import httpx

    monkeypatch.chdir(tmp_path)  # the engine's batch journal goes under ./.llm-policy/
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-live-sample")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.base_url)
    monkeypatch.delenv("ANTHROPIC_API_URL", raising=False)
    emulator.state.config.update({"batch_latency_s": 0.05})
    assert main(["demo", "--live", "--yes", "--scale", "0.03"]) == 0
    out = capsys.readouterr().out
    estimate = out.index("--live:")
    assert "at most about $" in out[estimate:] and out.index("dollars") > estimate
    billed = httpx.get(f"{emulator.base_url}/_emulator/billing", params={"api_key": "sk-ant-live-sample"})
    record = billed.json()
    assert record["requests_standard"] > 0 and record["requests_batch"] > 0
