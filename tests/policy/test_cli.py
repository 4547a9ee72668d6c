"""``llm-policy validate`` / ``explain`` / ``schema``: exit codes, JSON shapes, text forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.policy import schema
from tests.policy.conftest import policy_text

ROOT = Path(__file__).resolve().parents[2]
INDEXING = str(ROOT / "policies" / "examples" / "indexing.yaml")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "policies")]) == 0
    assert "0 invalid" in capsys.readouterr().out


def test_validate_json_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "good.yaml", policy_text("enabled: true"))
    (tmp_path / "sub").mkdir()
    bad = _write(tmp_path / "sub", "bad.yml", policy_text("rollout: 101"))
    assert main(["validate", "--format", "json", str(tmp_path)]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body == {
        "valid": False,
        "strict": False,
        "errors": [
            {
                "code": "schema.range",
                "file": str(bad),
                "line": 5,
                "column": 12,
                "path": "$.spec.rollout",
                "message": "spec.rollout must be between 0 and 100, not 101",
            },
        ],
        "warnings": [],
    }


def test_validate_text_form_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "p.yaml", policy_text("rules: [{name: a}, {name: b, match: {role: x}}]"))
    assert main(["validate", str(path)]) == 0  # warnings do not make a policy invalid
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f'{path}:5:22: rule.unreachable: rule "b" can never match')
    assert out[1] == "1 file(s) checked: 1 valid, 0 invalid, 1 warning(s)"


def test_validate_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert main(["validate", str(tmp_path)]) == 2  # a directory without policies
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "no *.yaml or *.yml files" in err
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2


def test_explain_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "explain",
        "--policy",
        INDEXING,
        "--call-site",
        "indexing.table_rows",
        "--role",
        "indexing",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--format",
        "json",
    ]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) == {"strategy", "engine", "rule", "policy", "cache", "batch", "decided", "trace"}
    assert body["strategy"] == "batch+cache" and body["rule"] == "indexing-extraction"
    assert body["engine"] == {
        "touches": True,
        "transport": "direct",
        "mode": "enforce",
        "rollout": 100,
        "notes": [],
    }
    assert body["decided"] == {"strategy": "batch+cache", "cache": body["cache"], "batch": body["batch"]}
    assert body["policy"]["name"] == "indexing-batch-cache" and body["policy"]["version"] is None
    assert body["cache"] == {"mode": "auto", "ttl": "1h", "breakpoints": []}
    assert body["batch"] == {
        "mode": "accumulate",
        "maxRequests": 200,
        "maxWait": "2m",
        "deadline": "24h",
        "retries": 3,
        "onFailure": "direct",
    }
    assert body["trace"] == [
        {
            "rule": "indexing-extraction",
            "matched": True,
            "why": (
                'callSite "indexing.table_rows" matches "indexing.table_*"; '
                'role "indexing" matches "indexing"; '
                'provider "anthropic" matches "anthropic"; model "claude-sonnet-4-5" matches "claude-*"'
            ),
        }
    ]


def test_explain_text_says_what_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--policy", INDEXING, "--call-site", "health.llm_check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('health.llm_check: direct. In policy "indexing-batch-cache"')
    assert 'rule "health-direct" decides: no caching and no batching' in out
    assert "skipped  indexing-extraction: the call has no role" not in out  # callSite fails first
    assert "skipped  indexing-extraction: callSite does not match any of" in out


def test_explain_invalid_and_missing_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.yaml", policy_text("mode: fast"))
    assert main(["explain", "--policy", str(bad), "--call-site", "x"]) == 1
    assert "schema.value" in capsys.readouterr().err
    assert main(["explain", "--policy", str(tmp_path / "nope.yaml"), "--call-site", "x"]) == 2


def test_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema()
