"""Docs cannot rot: every YAML snippet in README.md and docs/ validates, every shipped
policy validates, and every error code is documented with the exact lines it prints."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from engine.policy import CODES, Report, check_paths, check_text
from engine.policy._load import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
REFERENCE = ROOT / "docs" / "policy.md"


def _blocks(path: Path, info: str) -> list[str]:
    return [body for kind, body in FENCE.findall(path.read_text(encoding="utf-8")) if kind.strip() == info]


SNIPPETS = [
    pytest.param(body, id=f"{path.relative_to(ROOT)}#{n}")
    for path in DOCS
    for n, body in enumerate(_blocks(path, "yaml"))
]


def test_docs_have_snippets() -> None:
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_every_yaml_snippet_validates(snippet: str) -> None:
    report = check_text(snippet, source="snippet.yaml")
    assert report.errors == (), [e.format() for e in report.errors]


def test_every_shipped_policy_validates_without_warnings() -> None:
    reports = check_paths([ROOT / "policies"])
    assert len(reports) >= 4
    names = {report.source.rsplit("/", 1)[-1] for report in reports}
    assert {"pipeshub-default.yaml", "indexing.yaml", "agent-chat.yaml", "shadow-rollout.yaml"} <= names
    for report in reports:
        assert report.valid and not report.warnings, [i.format() for i in report.errors + report.warnings]
        first = (ROOT / report.source).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        assert first.endswith("schemas/policy.v1.json")


def test_default_policy_is_disabled_with_everything_off() -> None:
    (report,) = check_paths([ROOT / "policies" / "pipeshub-default.yaml"])
    assert report.policy is not None
    spec = report.policy.spec
    assert not spec.enabled and spec.rules == ()
    assert spec.defaults.cache is not None and spec.defaults.cache.mode == "off"
    assert spec.defaults.batch is not None and spec.defaults.batch.mode == "off"


def _sections() -> dict[str, str]:
    text = REFERENCE.read_text(encoding="utf-8").split("\n## Error codes\n", 1)[1]
    parts = re.split(r"^### `([a-z0-9.-]+)`\n", text, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_every_code_is_documented_and_every_documented_code_exists() -> None:
    assert list(_sections()) == list(CODES)


@pytest.mark.parametrize("code", [c for c in CODES if c != "schema.invalid"])
def test_documented_example_prints_exactly_what_the_engine_prints(code: str, tmp_path: Path) -> None:
    blocks = {kind.strip(): body for kind, body in FENCE.findall(_sections()[code])}
    expected = blocks["text"].splitlines()
    if "yaml expect-error" in blocks:
        report = check_text(blocks["yaml expect-error"], source="policy.yaml")
    else:
        report = _recipe(code, tmp_path)
    got = [i.format() for i in report.errors + report.warnings]
    if code == "policy.too-many-errors":
        got = [i.format() for i in report.errors][-1:]
    assert got == expected
    assert any(f": {code}: " in line for line in got)


def _recipe(code: str, tmp_path: Path) -> Report:
    """File-level findings need a file, not a snippet."""
    path = tmp_path / "policy.yaml"
    if code == "file.unreadable":
        path.write_bytes(b"\xff\xfe")
    elif code == "file.too-large":
        path.write_text("#" * (2 * MAX_BYTES), encoding="utf-8")
    elif code == "policy.too-many-errors":
        rules = "".join(f"    - {{name: r{i}, cache: {{ttl: 10m}}}}\n" for i in range(60))
        head = "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: example}\n"
        return check_text(f"{head}spec:\n  rules:\n{rules}", source="policy.yaml")
    (report,) = check_paths([path])
    return replace(report, errors=tuple(replace(i, file="policy.yaml") for i in report.errors))
