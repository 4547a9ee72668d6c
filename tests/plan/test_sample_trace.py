"""The sample trace that ships with the package: plan and recommend run on it out of the box."""

from __future__ import annotations

import json
from typing import Any

from engine._resources import resource_path
from engine.cli import main

SAMPLE = resource_path("benchmarks/traces/pipeshub-mixed.trace.jsonl")
POLICY = resource_path("policies/examples/pipeshub-savings.yaml")


def test_plan_and_recommend_run_on_the_shipped_sample(capsys: Any) -> None:
    assert SAMPLE.is_file()
    assert main(["plan", "--policy", str(POLICY), "--trace", str(SAMPLE), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total"]["calls"] == sum(1 for _ in SAMPLE.open(encoding="utf-8"))
    assert main(["recommend", "--trace", str(SAMPLE)]) == 0
    assert "apiVersion: llm-policy/v1" in capsys.readouterr().out
