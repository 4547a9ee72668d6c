"""``llm-policy demo`` (small scale) and the workload generators it runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
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
        "uncached input tokens (full price)",
        "cached input: written",
        "cached input: read",
        "output tokens",
        "batch share",
        "dollars",
        "savings",
    ):
        assert row in out
    saving = re.search(r"│ savings\s*│\s*│\s*([0-9.]+)%", out)
    assert saving is not None and float(saving.group(1)) > 0
    # what it costs in time, per call site, and the proof that nothing else changed
    assert re.search(r"│ indexing\.\S+\s.*│ \d+: median [0-9.]+ s, max [0-9.]+ s", out)
    assert re.search(r"│ chat\.agent\.stream\s.*│ direct", out)
    assert re.search(r"answers unchanged: all \d+ calls returned the same answer", out)
    assert "model claude-sonnet-4-6; prices per million tokens from engine/data/anthropic.yaml" in out
    log = re.search(r"Next: llm-policy doctor --log (\S+)", out)
    assert log is not None and main(["doctor", "--log", log.group(1)]) == 0
    # progress reaches a non-terminal as plain lines
    assert re.search(r"^calls: (\d+)/\1$", out, re.MULTILINE)


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_a_bad_policy_fails_fast_with_located_errors(
    command: str, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    bad = tmp_path / "BAD.yaml"
    bad.write_text(
        "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: x}\nspec: {rollout: 500}\n"
    )
    argv = [command, "--policy", str(bad)] + (["--workload", "indexing"] if command == "bench" else [])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"{bad}:4:" in captured.err and "schema.range" in captured.err
    assert "nothing was run" in captured.err and "Emulator" not in captured.out
    assert main([command, "--policy", str(tmp_path / "missing.yaml"), *argv[3:]]) == 2


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


def test_bench_writes_results_only_where_it_is_told(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = ["bench", "--workload", "retrieval", "--scale", "0.005", "--arms", "policy", "--format", "json"]
    main(argv)
    assert "files" not in json.loads(capsys.readouterr().out)
    assert list(here.iterdir()) == []
    main([*argv, "--results", str(tmp_path / "out")])
    files = json.loads(capsys.readouterr().out)["files"]
    assert sorted(Path(f).parent for f in files) == [tmp_path / "out"] * 2
    assert list(here.iterdir()) == []
