"""Compile and evaluate: immutability, the memo, the index, the trace."""

from __future__ import annotations

import dataclasses
import sys

import pytest

import engine
from engine.compile import MEMO_SIZE, compile_policy
from engine.decision import CallContext
from engine.evaluate import TRACE_LIMIT, decide, evaluate, explain
from engine.policy import load_policy_text
from tests.policy.conftest import policy_text


def _compiled(spec: str, version: int | None = None) -> engine.CompiledPolicy:
    return compile_policy(load_policy_text(policy_text(spec)), version=version)


def test_public_api_names_the_functions() -> None:
    module = sys.modules["engine.evaluate"]
    assert engine.evaluate is module.evaluate  # not shadowed by the submodule of the same name
    assert engine.compile_policy is compile_policy


def test_compiled_policy_is_immutable_and_carries_identity() -> None:
    policy = load_policy_text(policy_text("enabled: true\nmode: shadow\nrollout: 40"))
    compiled = compile_policy(policy, version=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.enabled = False  # type: ignore[misc]
    decision = evaluate(compiled, CallContext("x"))
    assert (decision.policy_name, decision.revision, decision.version) == ("t", policy.revision, 7)
    assert (decision.mode, decision.rollout) == ("shadow", 40)
    assert [name for name, _ in compiled.stages] == ["merge defaults", "compile rules", "index rules"]


def test_repeated_context_is_answered_from_the_memo() -> None:
    compiled = _compiled("enabled: true\nrules: [{name: a, match: {callSite: 'x.*'}, cache: {mode: auto}}]")
    ctx = CallContext("x.y", role="r")
    first = evaluate(compiled, ctx)
    assert evaluate(compiled, CallContext("x.y", role="r")) is first
    info = compiled.memo.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.maxsize) == (1, 1, MEMO_SIZE)


def test_index_tries_only_rules_that_could_match() -> None:
    rules = ",".join(f"{{name: r{i}, match: {{callSite: 'svc{i}.*', role: role{i}}}}}" for i in range(200))
    compiled = _compiled(f"enabled: true\nrules: [{rules}, {{name: last, match: {{model: 'claude-*'}}}}]")
    ctx = CallContext("svc42.call", role="role42")
    assert [i for i in range(len(compiled.rules)) if compiled.index.candidates(ctx) >> i & 1] == [42]
    assert evaluate(compiled, ctx).rule == "r42"
    assert evaluate(compiled, CallContext("svc42.call", role="other", model="claude-x")).rule == "last"


def test_evaluate_trace_is_capped_but_explain_lists_every_rule() -> None:
    # globs that start and end with a wildcard give the index nothing to go on: all are candidates
    rules = ",".join(f"{{name: r{i}, match: {{role: '*x{i}*'}}}}" for i in range(40))
    compiled = _compiled(f"enabled: true\nrules: [{rules}, {{name: all}}]")
    ctx = CallContext("site", role="none")
    quick, full = decide(compiled, ctx), explain(compiled, ctx)
    assert quick.rule == full.rule == "all"
    assert len(quick.trace) == TRACE_LIMIT + 1 and len(full.trace) == 41
    assert full.trace[3].why == 'role does not match "*x3*"'
    assert full.trace[-1].why == "the rule has no match fields: it matches every call"


def test_disabled_policy_trace_says_why() -> None:
    compiled = _compiled("rules: [{name: a, cache: {mode: auto}}]")
    decision = evaluate(compiled, CallContext("x"))
    assert decision.strategy == "direct" and not decision.enabled
    assert [(s.rule, s.matched, s.why) for s in decision.trace] == [
        ("(policy)", False, 'policy "t" is disabled (spec.enabled: false): the call goes direct, untouched')
    ]


def test_batch_plan_durations_as_written_and_in_seconds() -> None:
    compiled = _compiled("enabled: true\ndefaults: {batch: {mode: accumulate, maxWait: 2m, deadline: 1h}}")
    plan = evaluate(compiled, CallContext("x")).batch
    assert plan is not None
    assert (plan.max_wait, plan.max_wait_s, plan.deadline, plan.deadline_s) == ("2m", 120, "1h", 3600)
