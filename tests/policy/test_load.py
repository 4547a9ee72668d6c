"""The YAML loader: scalars as written, safety limits, positions, and what the model keeps."""

from __future__ import annotations

import pytest

from engine.policy import check_text, load_policy_text
from engine.policy._errors import IssueList
from engine.policy._load import MAX_BYTES, MAX_DEPTH, load_yaml
from tests.policy.conftest import policy_text


def _data(text: str) -> object:
    issues = IssueList("t.yaml")
    loaded = load_yaml(text, issues)
    assert not issues.items, issues.items
    return loaded.data


@pytest.mark.parametrize("word", ["off", "on", "yes", "no", "y", "n", "Off", "NO"])
def test_yaml_1_1_booleans_stay_strings(word: str) -> None:
    assert _data(f"a: {word}") == {"a": word}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("5m", "5m"),
        ("30s", "30s"),
        ("1_000", "1_000"),
        ("2026-01-01", "2026-01-01"),
        ("010", 10),
        ("'off'", "off"),
        ("!!str 12", "12"),
    ],
)
def test_core_schema_scalars(text: str, value: object) -> None:
    assert _data(f"a: {text}") == {"a": value}


def test_positions_are_one_based_and_point_at_values_and_keys() -> None:
    issues = IssueList("t.yaml")
    loaded = load_yaml("a:\n  b: [1, x]\n", issues)
    assert loaded.where.value("$.a.b[1]") == (2, 10)
    assert loaded.where.key("$.a.b") == (2, 3)
    assert loaded.where.value("$.a.b[7]") == (2, 6)  # falls back to the nearest written ancestor


def test_size_cap() -> None:
    text = "a: " + "x" * MAX_BYTES
    assert [i.code for i in check_text(text).errors] == ["file.too-large"]


def test_depth_cap() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    assert [i.code for i in check_text(text).errors] == ["yaml.too-deep"]


def test_alias_bomb_is_refused_before_any_expansion() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    report = check_text("\n".join(lines))
    assert [(i.code, i.line) for i in report.errors] == [("yaml.alias", 2)]


def test_non_string_keys_are_reported() -> None:
    report = check_text(policy_text("1: x\nnull: y"))
    assert [i.line for i in report.errors if i.code == "yaml.key-type"] == [5, 6]


def test_empty_file() -> None:
    assert [i.code for i in check_text("# nothing\n").errors] == ["yaml.empty"]


def test_float_where_an_integer_belongs_is_refused() -> None:
    report = check_text(policy_text("rollout: 50.0"))
    assert [i.code for i in report.errors] == ["schema.type"]


def test_document_is_exactly_what_was_written() -> None:
    text = policy_text("""
        enabled: true
        rules:
          - {name: a, match: {callSite: [x, "y.*"]}, cache: {mode: off}}
    """)
    policy = load_policy_text(text)
    assert policy.document == {
        "apiVersion": "llm-policy/v1",
        "kind": "OptimizationPolicy",
        "metadata": {"name": "t"},
        "spec": {
            "enabled": True,
            "rules": [{"name": "a", "match": {"callSite": ["x", "y.*"]}, "cache": {"mode": "off"}}],
        },
    }
    policy.document["spec"]["enabled"] = False  # a copy: the policy does not change
    assert policy.document["spec"]["enabled"] is True


def test_revision_ignores_formatting_and_to_yaml_round_trips() -> None:
    a = load_policy_text(policy_text("rules: [{name: r, match: {org: '0o17'}, cache: {mode: off}}]"))
    b = load_policy_text(
        "kind: OptimizationPolicy\napiVersion: llm-policy/v1\n# a comment\nmetadata:\n  name: t\n"
        "spec:\n  rules:\n    - name: r\n      match:\n        org: '0o17'\n"
        "      cache:\n        mode: 'off'\n"
    )
    assert a.revision == b.revision and len(a.revision) == 64
    again = load_policy_text(a.to_yaml())
    assert again.revision == a.revision and again.document == a.document


def test_policy_is_frozen() -> None:
    policy = load_policy_text(policy_text("enabled: true"))
    with pytest.raises(Exception, match="frozen"):
        policy.spec.enabled = False  # type: ignore[misc]
    assert policy.name == "t"


def test_model_accepts_a_stored_document_as_plain_data() -> None:
    from engine.policy import Policy

    policy = load_policy_text(policy_text("enabled: true\nrules: [{name: a, match: {callSite: [x, y]}}]"))
    again = Policy.model_validate(policy.document)
    assert again.document == policy.document and again.revision == policy.revision
