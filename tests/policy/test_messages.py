"""The main findings, word for word: what an admin reads must not drift by accident."""

from __future__ import annotations

import pytest

from engine.policy import PolicyError, check_text, load_policy_text
from tests.policy.conftest import policy_text


def _lines(text: str) -> list[str]:
    return [issue.format() for issue in check_text(text, source="p.yaml").errors]


def test_unknown_key_names_the_nearest_valid_key() -> None:
    text = policy_text("""
        rules:
          - name: a
            match: {callsite: "x.*"}
    """)
    assert _lines(text) == [
        'p.yaml:7:15: schema.unknown-key: unknown key "callsite" in spec.rules[0].match; '
        'did you mean "callSite"?'
    ]


def test_unknown_key_without_a_near_match_lists_the_allowed_keys() -> None:
    text = policy_text("""
        rules:
          - {name: a, priority: 3}
    """)
    assert _lines(text) == [
        'p.yaml:6:17: schema.unknown-key: unknown key "priority" in spec.rules[0]; '
        "allowed: batch, cache, description, match, name"
    ]


def test_enum_value_suggests_the_intended_one() -> None:
    text = policy_text("""
        defaults:
          cache: {mode: explict}
    """)
    assert _lines(text) == [
        'p.yaml:6:19: schema.value: spec.defaults.cache.mode must be "off", "auto" or "explicit", '
        'not the string "explict"; did you mean "explicit"?'
    ]


def test_yes_for_a_boolean_explains_the_scalar_rule() -> None:
    assert _lines(policy_text("enabled: yes")) == [
        'p.yaml:5:12: schema.type: spec.enabled must be true or false, not the string "yes"; '
        "yes/no/on/off are read as text in a policy, write true or false"
    ]


def test_missing_key() -> None:
    text = "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nspec: {}\n"
    assert _lines(text) == [
        'p.yaml:1:1: schema.missing-key: the document is missing the required key "metadata"'
    ]


def test_duration() -> None:
    text = policy_text("""
        defaults:
          batch: {maxWait: 30 sec}
    """)
    assert _lines(text) == [
        "p.yaml:6:22: schema.pattern: spec.defaults.batch.maxWait must be a duration: "
        "a whole number followed by s, m or h (e.g. '30s', '5m', '24h'); got the string \"30 sec\""
    ]


def test_range() -> None:
    assert _lines(policy_text("rollout: 150")) == [
        "p.yaml:5:12: schema.range: spec.rollout must be between 0 and 100, not 150"
    ]


def test_duplicate_key() -> None:
    assert _lines(policy_text("mode: enforce\nmode: shadow")) == [
        'p.yaml:6:3: yaml.duplicate-key: duplicate key "mode" (first written on line 5); '
        "a key may appear once"
    ]


def test_duplicate_rule_name() -> None:
    text = policy_text("""
        rules:
          - {name: a}
          - {name: a}
    """)
    assert _lines(text) == [
        'p.yaml:7:14: rule.duplicate-name: rule name "a" is already used by spec.rules[0] (line 6); '
        "rule names must be unique"
    ]


def test_breakpoints_without_explicit() -> None:
    text = policy_text("""
        rules:
          - {name: a, cache: {mode: auto, breakpoints: [system]}}
    """)
    assert _lines(text) == [
        "p.yaml:6:50: cache.breakpoints-need-explicit: breakpoints are only used with cache mode "
        '"explicit", but the mode here is "auto"; set mode: explicit or remove breakpoints'
    ]


def test_too_many_breakpoints() -> None:
    text = policy_text("""
        rules:
          - name: a
            cache: {mode: explicit, breakpoints: [tools, system, history, last, last]}
    """)
    assert _lines(text)[0] == (
        "p.yaml:7:44: cache.too-many-breakpoints: spec.rules[0].cache.breakpoints lists 5 breakpoints; "
        "the API allows at most 4 per request"
    )


def test_max_wait_over_deadline() -> None:
    text = policy_text("""
        defaults:
          batch: {maxWait: 2h, deadline: 1h}
    """)
    assert _lines(text) == [
        "p.yaml:6:22: batch.max-wait-exceeds-deadline: maxWait 2h is longer than deadline 1h; "
        "a pooled request would miss its deadline before its batch is sent"
    ]


def test_unreachable_rule_warning() -> None:
    text = policy_text("""
        rules:
          - {name: all-indexing, match: {callSite: "indexing.*"}}
          - {name: tables, match: {callSite: indexing.table_rows}}
    """)
    report = check_text(text, source="p.yaml")
    assert report.valid
    assert [w.format() for w in report.warnings] == [
        'p.yaml:7:7: rule.unreachable: rule "tables" can never match: rule "all-indexing" '
        "(spec.rules[0], line 6) comes first and matches every call it would"
    ]


def test_policy_error_lists_every_error() -> None:
    text = policy_text("rollout: 150\nmode: fast")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, source="p.yaml")
    assert [i.code for i in caught.value.errors] == ["schema.range", "schema.value"]
    assert str(caught.value) == "\n".join(
        [
            "2 errors in policy",
            "  p.yaml:5:12: schema.range: spec.rollout must be between 0 and 100, not 150",
            '  p.yaml:6:9: schema.value: spec.mode must be "enforce" or "shadow", not the string "fast"',
        ]
    )
    assert isinstance(caught.value, ValueError)
