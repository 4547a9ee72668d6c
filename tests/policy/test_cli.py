"""``llm-policy validate`` / ``explain`` / ``schema``: exit codes, JSON shapes, text forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["explain", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


BOTH = """
enabled: true
rules:
  - name: all
    match: {callSite: "*"}
    cache: {mode: auto, ttl: 1h}
    batch: {mode: accumulate}
"""


def test_explain_says_untouched_for_a_provider_that_is_not_claude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_write(tmp_path, "p.yaml", policy_text(BOTH)))
    code, body = _explain(capsys, "--policy", path, "--call-site", "x", "--provider", "openai")
    assert code == 0 and body["strategy"] == "untouched" and body["engine"]["touches"] is False
    assert body["cache"] is None and body["batch"] is None
    assert body["decided"]["strategy"] == "batch+cache"  # what the rule says, kept apart
    assert "does not reach Claude" in body["engine"]["notes"][0]
    assert main(["explain", "--policy", path, "--call-site", "x", "--provider", "openai"]) == 0
    assert capsys.readouterr().out.startswith("x: untouched. Provider 'openai' does not reach Claude")
    code, body = _explain(capsys, "--policy", path, "--call-site", "x", "--provider", "bedrock")
    assert body["strategy"] == "batch+cache" and body["engine"]["transport"] == "bedrock"


def test_explain_says_what_shadow_mode_and_a_disabled_policy_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shadow = str(_write(tmp_path, "s.yaml", policy_text(BOTH + "mode: shadow\n")))
    code, body = _explain(capsys, "--policy", shadow, "--call-site", "x")
    assert code == 0 and body["strategy"] == "direct" and body["decided"]["strategy"] == "batch+cache"
    assert any("shadow mode" in note for note in body["engine"]["notes"])
    off = str(_write(tmp_path, "o.yaml", policy_text(BOTH.replace("enabled: true", "enabled: false"))))
    code, body = _explain(capsys, "--policy", off, "--call-site", "x")
    assert code == 0 and body["strategy"] == "untouched" and "disabled" in body["engine"]["notes"][0]


def test_explain_cuts_plans_down_to_what_the_model_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_write(tmp_path, "p.yaml", policy_text(BOTH)))
    code, body = _explain(capsys, "--policy", path, "--call-site", "x", "--model", "claude-sonnet-4-5")
    assert code == 0 and body["engine"]["notes"] == [] and body["strategy"] == "batch+cache"
    code, body = _explain(capsys, "--policy", path, "--call-site", "x")
    assert any("--model" in note for note in body["engine"]["notes"])


def test_the_readme_explain_example_does_not_answer_direct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    policy = readme.split("## Policies", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my-policy.yaml").write_text(policy, encoding="utf-8")
    (command,) = [line for line in readme.splitlines() if line.startswith("llm-policy explain ")]
    argv = command.split("#", 1)[0].split()[1:]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["strategy"] == "batch+cache" and body["rule"] == "indexing"


def test_explain_reads_a_policy_from_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    text = (ROOT / "policies" / "examples" / "indexing.yaml").read_text(encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))
    code, body = _explain(capsys, "--policy", "-", "--call-site", "health.llm_check")
    assert code == 0 and body["rule"] == "health-direct"
