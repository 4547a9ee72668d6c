"""A policy is admin input and is handled like hostile input: any text or bytes get
located findings, never a traceback, and no finding can forge lines in a CI log."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.policy import check_text
from engine.policy._check import check_file
from tests.policy.conftest import HEADER

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_CHAR = st.characters(codec=None, exclude_categories=())  # lone surrogates included


def test_lone_surrogate_is_a_located_error() -> None:
    report = check_text(f"{HEADER}spec:\n  rules:\n    - name: \ud800x\n", source="p.yaml")
    assert [(e.code, e.line, e.column) for e in report.errors] == [("yaml.syntax", 6, 13)]
    assert "U+D800" in report.errors[0].message


@FAST
@given(st.text(ANY_CHAR, max_size=200))
def test_any_text_gets_findings_not_a_traceback(text: str) -> None:
    report = check_text(HEADER + text)
    for issue in (*report.errors, *report.warnings):
        assert issue.line >= 1 and issue.column >= 1
        assert "\n" not in issue.format() and "\r" not in issue.format()


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_in_a_file_get_a_located_finding(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_bytes(HEADER.encode() + data)
    report = check_file(path)
    for issue in report.errors:
        assert issue.line >= 1
        assert "\n" not in issue.format()


def test_undecodable_byte_is_located(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(HEADER.encode() + b"spec:\n  rules: [ab\xffc]\n")
    (error,) = check_file(path).errors
    assert (error.code, error.line, error.column) == ("file.unreadable", 5, 13)
    assert "0xff" in error.message


@pytest.mark.parametrize(
    ("yaml_value", "path"),
    [
        ('spec: {}\nmetadata: {name: "abc\\n"}', "$.metadata.name"),
        ('spec: {rules: [{name: "r\\n"}]}', "$.spec.rules[0].name"),
        ('spec: {defaults: {batch: {maxWait: "30s\\n"}}}', "$.spec.defaults.batch.maxWait"),
    ],
)
def test_value_ending_in_newline_is_located(yaml_value: str, path: str) -> None:
    head = "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\n"
    if "metadata" not in yaml_value:
        head += "metadata: {name: t}\n"
    text = head + yaml_value + "\n"
    (error,) = check_text(text).errors
    assert error.code == "schema.pattern"
    assert error.path == path
    assert error.line == text.count("\n")
    assert error.column > 1


def test_control_characters_in_a_key_cannot_forge_lines() -> None:
    text = f'{HEADER}spec:\n  "x\\nevil.yaml:1:1: ok\\u001b[2J\\u202e": 1\n'
    (error,) = check_text(text, source="p.yaml").errors
    line = error.format()
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "\\n" in line and "\\x1b" in line and "\\u202e" in line
    assert "\n" not in error.path and "\x1b" not in error.path


def test_control_characters_in_a_file_name_are_escaped() -> None:
    report = check_text("[", source="a\nb.yaml")
    assert report.errors[0].format().startswith("a\\nb.yaml:")


@pytest.mark.parametrize(
    "text",
    [
        f"{HEADER}spec:\n  rules:\n    - {{name: a, match: {{callSite: 'x.*'}}, cache: {{mode: auto}}}}\n",
        f"{HEADER}spec: &s {{enabled: true}}\nother: *s\n",
        f"{HEADER}spec: " + "[" * 40 + "]" * 40 + "\n",
        f"{HEADER}spec:\n  rules: [ab\n",
    ],
)
def test_libyaml_and_the_pure_python_loader_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml composes when it is there; PyYAML's own parser is the fallback, with the same findings."""
    import yaml

    fast = check_text(text)
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    slow = check_text(text)
    assert [(e.code, e.line) for e in fast.errors] == [(e.code, e.line) for e in slow.errors]
    assert (fast.policy is None) == (slow.policy is None)
