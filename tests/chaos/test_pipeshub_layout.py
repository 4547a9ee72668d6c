"""PipesHub's process layout, with pooled calls: two worker processes started from one folder
(one default journal), and two worker event loops in threads of one process (one engine).

Invariant: every pooled call is answered with its own answer, and each request is billed
once (on the emulator's billing) although both workers ask the shared prompts. Two runs of
each by default; 20 with ``-m chaos``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.adapter import PolicyEngine
from tests.chaos.conftest import tries
from tests.chaos.harness import FIGURES, Figures, paid
from tests.chaos.pipeshub_worker import ask_all

REPO = Path(__file__).resolve().parents[2]
POLICY = textwrap.dedent(
    """\
    apiVersion: llm-policy/v1
    kind: OptimizationPolicy
    metadata: {name: pipeshub-layout}
    spec:
      enabled: true
      mode: enforce
      rules:
        - name: indexing
          match: {callSite: "indexing.*"}
          batch: {mode: accumulate, maxRequests: 8, maxWait: 1s}
    """
)


def _workload(run: int) -> tuple[list[str], list[list[str]]]:
    shared = [f"layout {run} shared {i}" for i in range(6)]
    own = [[f"layout {run} worker {w} doc {i}" for i in range(6)] for w in range(2)]
    return shared, own


def _check(scenario: str, emulator: Any, reports: list[dict[str, str]]) -> None:
    asked = Counter(p for report in reports for p in report)
    wrong = [
        f"{p}: {answer}"
        for report in reports
        for p, answer in report.items()
        if not answer.startswith(f"echo: {p} ")
    ]
    bills = paid(emulator)
    twice = sorted(p for p in asked if bills[p] > 1)
    never = sorted(p for p in asked if bills[p] == 0)
    calls = sum(asked.values())
    FIGURES.setdefault(scenario, []).append(Figures(calls, calls - len(wrong), len(twice), 0))
    assert not wrong, wrong[:3]
    assert not twice, f"billed twice: {twice[:3]}"
    assert not never, f"answered but never billed (cannot be): {never[:3]}"


@pytest.mark.parametrize("run", tries(2, 20))
def test_two_worker_processes_started_from_one_folder(chaos_emulator: Any, tmp_path: Path, run: int) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    shared, own = _workload(run)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ANTHROPIC_BASE_URL": chaos_emulator.base_url}
    workers = []
    for n in range(2):
        listing = tmp_path / f"prompts{n}.json"
        listing.write_text(json.dumps([*shared, *own[n]]), encoding="utf-8")
        command = [sys.executable, "-m", "tests.chaos.pipeshub_worker", "policy.yaml", listing.name]
        workers.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True))
    reports = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert (tmp_path / ".llm-policy" / "state.db").exists(), "both used the default journal in their folder"
    _check("pipeshub: two processes, one folder", chaos_emulator, reports)


@pytest.mark.parametrize("run", tries(2, 20))
def test_two_worker_event_loops_in_threads_of_one_process(
    chaos_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", chaos_emulator.base_url)
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    engine = PolicyEngine.from_file(tmp_path / "policy.yaml", batch_poll_interval=0.05)
    shared, own = _workload(run)
    reports: dict[int, dict[str, str]] = {}

    def worker(n: int) -> None:
        url = f"{chaos_emulator.base_url}/run{run}loop{n}/../"  # the same endpoint, a client of its own
        reports[n] = asyncio.run(ask_all(engine, [*shared, *own[n]], url))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    asyncio.run(engine.aclose())
    assert sorted(reports) == [0, 1], "a loop's callers were stranded"
    _check("pipeshub: two loops, one engine", chaos_emulator, [reports[0], reports[1]])
