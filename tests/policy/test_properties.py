"""Properties (hypothesis): the validator only ever answers with findings or PolicyError;
evaluation is deterministic and agrees with a brute-force first-match reference; the
unreachable-rule warning and glob coverage are sound."""

from __future__ import annotations

import fnmatch
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compile import compile_policy
from engine.decision import CallContext
from engine.evaluate import decide, evaluate, explain
from engine.policy import PolicyError, check_text, load_policy_text
from engine.policy._globs import covers, covers_all
from engine.policy._model import MATCH_FIELDS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Small alphabets so that globs and values collide often.
VALUES = st.sampled_from(["a", "a.b", "a.bc", "ab", "b.a", "abc", "x", "a.b.c", "A.b", ""])
GLOBS = st.sampled_from(
    [
        "*",
        "**",
        "a*",
        "a.*",
        "a.b",
        "a.b*",
        "a.b.c",
        "a?",
        "x",
        "A*",
        "*.*",
        "*c",
        "*.b",
        "*b*",
        "*[bc]",
        "[ab]*",
        "[!a]*",
        "a[.]b",
    ]
)
FIELD_GLOBS = st.one_of(GLOBS, st.lists(GLOBS, min_size=1, max_size=3))
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 8))):
        keys = draw(st.lists(st.sampled_from(list(MATCH_FIELDS)), unique=True, max_size=3))
        rule: dict[str, Any] = {"name": f"r{i}", "cache": {"mode": draw(st.sampled_from(["off", "auto"]))}}
        if keys:
            rule["match"] = {k: draw(FIELD_GLOBS) for k in keys}
        out.append(rule)
    return out


def _policy(rule_list: list[dict[str, Any]]) -> str:
    doc = {
        "apiVersion": "llm-policy/v1",
        "kind": "OptimizationPolicy",
        "metadata": {"name": "p"},
        "spec": {"enabled": True, "rules": rule_list},
    }
    return yaml.safe_dump(doc, sort_keys=False)


contexts = st.builds(
    CallContext,
    call_site=VALUES,
    role=st.none() | VALUES,
    provider=st.none() | VALUES,
    model=st.none() | VALUES,
    org=st.none() | VALUES,
)


def _reference(rule_list: list[dict[str, Any]], ctx: CallContext) -> str | None:
    """First match, the slow obvious way."""
    for rule in rule_list:
        ok = True
        for key, globs in rule.get("match", {}).items():
            value = getattr(ctx, MATCH_FIELDS[key]) or ""
            patterns = [globs] if isinstance(globs, str) else globs
            ok = ok and any(fnmatch.fnmatchcase(value, g) for g in patterns)
        if ok:
            return str(rule["name"])
    return None


@FAST
@given(st.text(max_size=300))
def test_validator_never_crashes_on_text(text: str) -> None:
    report = check_text(text)
    assert (report.policy is None) == bool(report.errors)
    try:
        load_policy_text(text)
    except PolicyError as exc:
        assert exc.errors
        assert all(e.line >= 1 and e.column >= 1 and e.path.startswith("$") for e in exc.errors)


@FAST
@given(JSONISH, st.sampled_from(["", "spec", "spec.rules", "spec.defaults", "metadata"]))
def test_validator_never_crashes_on_structures(value: Any, where: str) -> None:
    doc: dict[str, Any] = {
        "apiVersion": "llm-policy/v1",
        "kind": "OptimizationPolicy",
        "metadata": {"name": "p"},
        "spec": {"rules": [{"name": "a"}]},
    }
    if where:
        target = doc
        *parents, last = where.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    else:
        doc = value
    report = check_text(yaml.safe_dump(doc))
    assert sorted(report.errors, key=lambda i: i.sort_key()) == list(report.errors)
    assert all(issue.code and issue.message for issue in report.errors)


@FAST
@given(rules(), st.lists(contexts, min_size=1, max_size=6))
def test_evaluation_agrees_with_first_match_reference(
    rule_list: list[dict[str, Any]], ctxs: list[CallContext]
) -> None:
    compiled = compile_policy(load_policy_text(_policy(rule_list)))
    for ctx in ctxs:
        want = _reference(rule_list, ctx)
        first = evaluate(compiled, ctx)
        assert first.rule == want
        assert explain(compiled, ctx).rule == want
        assert decide(compiled, ctx) == first == evaluate(compiled, ctx)


@FAST
@given(rules(), st.lists(contexts, min_size=1, max_size=10))
def test_unreachable_warning_is_sound(rule_list: list[dict[str, Any]], ctxs: list[CallContext]) -> None:
    report = check_text(_policy(rule_list))
    hidden = {int(w.path.split("[")[1].rstrip("]")) for w in report.warnings if w.code == "rule.unreachable"}
    for index in hidden:
        for ctx in ctxs:
            if _reference([rule_list[index]], ctx) is not None:
                assert _reference(rule_list[:index], ctx) is not None


@FAST
@given(GLOBS, GLOBS, VALUES)
def test_glob_coverage_is_sound(wide: str, narrow: str, value: str) -> None:
    if covers(wide, narrow) and fnmatch.fnmatchcase(value, narrow):
        assert fnmatch.fnmatchcase(value, wide)


@FAST
@given(rules())
def test_to_yaml_round_trips(rule_list: list[dict[str, Any]]) -> None:
    policy = load_policy_text(_policy(rule_list))
    again = load_policy_text(policy.to_yaml())
    assert again.document == policy.document and again.revision == policy.revision


@FAST
@given(rules())
def test_unreachable_index_loses_no_warning(rule_list: list[dict[str, Any]]) -> None:
    """The cover index only narrows: it warns exactly where comparing every pair would."""
    report = check_text(_policy(rule_list))
    hidden = {int(w.path.split("[")[1].rstrip("]")) for w in report.warnings if w.code == "rule.unreachable"}

    def field(rule: dict[str, Any], key: str) -> tuple[str, ...] | None:
        value = rule.get("match", {}).get(key)
        return None if value is None else (value,) if isinstance(value, str) else tuple(value)

    brute = {
        i
        for i, later in enumerate(rule_list)
        if any(
            all(covers_all(field(earlier, k), field(later, k)) for k in MATCH_FIELDS)
            for earlier in rule_list[:i]
        )
    }
    assert hidden == brute
