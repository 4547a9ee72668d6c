"""Table-driven conformance: every case in cases/*.yaml, one test each.

``evaluate.yaml``: policy + context -> the decision (and trace) it must give, checked
through both ``evaluate`` (indexed, memoised) and ``explain`` (every rule in order).
``errors.yaml``: policy -> the exact list of finding codes, paths and places.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli.explain import decision_json
from engine.compile import compile_policy
from engine.decision import CallContext, Decision
from engine.evaluate import evaluate, explain
from engine.policy import Issue, check_text, load_policy_text

CASES = Path(__file__).parent / "cases"


def _cases(name: str) -> list[Any]:
    loaded: list[dict[str, Any]] = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["note"]) for case in loaded]


def _view(decision: Decision) -> dict[str, Any]:
    view = decision_json(decision)
    view.update(
        enabled=decision.enabled,
        mode=decision.mode,
        rollout=decision.rollout,
        on_unsupported=decision.on_unsupported,
    )
    return view


def _check_trace(decision: Decision, want: list[dict[str, Any]]) -> None:
    got = [{"rule": s.rule, "matched": s.matched, "why": s.why} for s in decision.trace]
    assert len(got) == len(want)
    for step, expected in zip(got, want, strict=True):
        assert {k: step[k] for k in expected} == expected


@pytest.mark.parametrize("case", _cases("evaluate.yaml"))
def test_evaluate_case(case: dict[str, Any]) -> None:
    compiled = compile_policy(load_policy_text(case["policy"]))
    ctx = CallContext(**case["context"])
    for decision in (evaluate(compiled, ctx), explain(compiled, ctx)):
        view = _view(decision)
        assert {k: view[k] for k in case["want"]} == case["want"]
    if "want_trace" in case:
        _check_trace(explain(compiled, ctx), case["want_trace"])


def _found(issues: tuple[Issue, ...], want: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: getattr(issue, k) for k in expected} for issue, expected in zip(issues, want, strict=False)]


@pytest.mark.parametrize("case", _cases("errors.yaml"))
def test_error_case(case: dict[str, Any]) -> None:
    report = check_text(case["policy"], source="case.yaml")
    want_errors = case.get("want_errors", [])
    assert [i.code for i in report.errors] == [w["code"] for w in want_errors]
    assert _found(report.errors, want_errors) == want_errors
    if "want_warnings" in case:
        assert [i.code for i in report.warnings] == [w["code"] for w in case["want_warnings"]]
        assert _found(report.warnings, case["want_warnings"]) == case["want_warnings"]
    assert (report.policy is None) == bool(want_errors)
