"""The admin's commands end to end: publish, re-publish, refuse, rollback, diff, disable, history.

The ``url`` store exists (what ``migrate`` does) and the engine is configured to load
``demo`` (``$LLM_POLICY_NAME``), the policy these tests publish.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main
from engine.store import open_store

from .helpers import policy_doc

Run = tuple[int, str, str]


@pytest.fixture
def url(tmp_path: Path) -> str:
    address = f"sqlite:///{tmp_path / 'cli.db'}"
    open_store(address).close()  # created, as `llm-policy migrate` would
    return address


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LLM_POLICY_NAME", "demo")
    monkeypatch.delenv("LLM_POLICY_STORE", raising=False)

    def run(*argv: str) -> Run:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _file(tmp_path: Path, name: str, doc: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def test_publish_then_republish_identical_is_a_no_op(cli: Any, url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=10))
    code, out, _ = cli("publish", path, "--store", url, "--author", "ana", "--comment", "first")
    assert code == 0 and out.startswith("published demo version 1 (revision ")
    code, out, _ = cli("publish", path, "--store", url, "--author", "ana")
    assert code == 0 and out.startswith("unchanged: demo version 1 ")
    code, out, _ = cli("history", "demo", "--store", url, "--format", "json")
    assert [v["version"] for v in json.loads(out)["versions"]] == [1]


def test_an_invalid_file_is_refused_like_validate_and_the_active_version_stays(
    cli: Any, url: str, tmp_path: Path
) -> None:
    cli("publish", _file(tmp_path, "good.yaml", policy_doc(rollout=10)), "--store", url, "--author", "ana")
    bad = _file(tmp_path, "bad.yaml", policy_doc(rollout=1000))
    code, out, err = cli("publish", bad, "--store", url, "--author", "mallory")
    assert code == 1 and "nothing was stored" in err
    _, validate_out, _ = cli("validate", bad)
    issue_lines = [line for line in validate_out.splitlines() if line.startswith(bad)]
    assert issue_lines and out.splitlines() == issue_lines
    assert issue_lines[0].startswith(f"{bad}:") and ": schema.range: " in issue_lines[0]
    code, out, _ = cli("show", "demo", "--store", url)
    assert code == 0 and "version 1 (active)" in out and "rollout: 10" in out


def test_rollback_diff_disable_and_history(cli: Any, url: str, tmp_path: Path) -> None:
    for rollout in (10, 20):
        path = _file(tmp_path, f"p{rollout}.yaml", policy_doc(rollout=rollout))
        assert cli("publish", path, "--store", url, "--author", "ana")[0] == 0
    code, out, _ = cli("diff", "demo", "1", "2", "--store", url)
    assert code == 0 and "-  rollout: 10\n+  rollout: 20\n" in out
    code, out, _ = cli("rollback", "demo", "1", "--store", url, "--author", "oncall", "--comment", "too fast")
    assert code == 0 and out.splitlines()[0].endswith("is active (was version 2)")
    assert out.splitlines()[1].startswith("demo: active version 1 (enabled: true, revision ")
    code, out, _ = cli("disable", "demo", "--store", url, "--author", "oncall")
    assert code == 0 and out.startswith("disabled demo: version 3")
    assert out.splitlines()[1].startswith("demo: active version 3 (enabled: false")
    code, out, _ = cli("disable", "demo", "--store", url, "--author", "oncall")
    assert code == 0 and out.startswith("unchanged: demo is already disabled")
    code, out, _ = cli("show", "demo", "--store", url)
    shown = yaml.safe_load(out)
    assert shown["spec"]["enabled"] is False and shown["spec"]["rollout"] == 10
    code, out, _ = cli("enable", "demo", "--store", url, "--author", "oncall", "--comment", "over")
    assert code == 0 and out.startswith("enabled demo: version 4 is now active")
    assert "demo: active version 4 (enabled: true" in out
    code, out, _ = cli("history", "demo", "--store", url, "--format", "json")
    data = json.loads(out)
    assert [(v["version"], v["active"]) for v in data["versions"]] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    assert set(data["versions"][0]) == {"version", "revision", "author", "comment", "created_at", "active"}
    assert [(e["event"], e["version"], e["author"]) for e in data["events"]] == [
        ("published", 1, "ana"),
        ("published", 2, "ana"),
        ("rolled_back", 1, "oncall"),
        ("disabled", 3, "oncall"),
        ("enabled", 4, "oncall"),
    ]
    assert data["events"][2]["comment"] == "too fast"
    code, out, _ = cli("history", "demo", "--store", url)
    assert code == 0 and "4 version(s), version 4 active" in out


def test_show_output_publishes_back_to_the_same_revision(cli: Any, url: str, tmp_path: Path) -> None:
    doc = policy_doc(rollout=5)
    doc["spec"]["defaults"]["batch"] = {"mode": "off", "maxWait": "30s"}
    cli("publish", _file(tmp_path, "p.yaml", doc), "--store", url, "--author", "ana")
    _, shown, _ = cli("show", "demo", "--store", url)
    (tmp_path / "shown.yaml").write_text(shown, encoding="utf-8")
    code, out, _ = cli("publish", str(tmp_path / "shown.yaml"), "--store", url, "--author", "ana")
    assert code == 0 and out.startswith("unchanged:")


def test_exit_codes_for_conflict_not_found_and_usage(cli: Any, url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=10))
    cli("publish", path, "--store", url, "--author", "ana")
    other = _file(tmp_path, "q.yaml", policy_doc(rollout=20))
    code, _, err = cli("publish", other, "--store", url, "--author", "bob", "--expected-version", "0")
    assert code == 3 and "now at version 1 (expected version 0)" in err
    assert cli("show", "ghost", "--store", url)[0] == 1
    assert cli("rollback", "demo", "9", "--store", url, "--author", "ana")[0] == 1
    assert cli("show", "demo", "--store", "ftp://x")[0] == 2
    with pytest.raises(SystemExit) as info:
        cli("rollback", "demo", "1", "--store", url)  # no --author
    assert info.value.code == 2


def test_store_comes_from_the_environment(
    cli: Any, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_POLICY_STORE", url)
    assert cli("publish", _file(tmp_path, "p.yaml", policy_doc()), "--author", "ana")[0] == 0
    code, out, _ = cli("show", "demo", "--store", url)
    assert code == 0 and "version 1" in out


def test_an_unreachable_arango_store_never_prints_its_password(cli: Any) -> None:
    code, out, err = cli("show", "demo", "--store", "arangodb://root:hunter2@127.0.0.1:9/es")
    assert code == 4
    assert "hunter2" not in out + err and "root:***@127.0.0.1:9/es" in err


def test_migrate_from_the_command_line_twice(cli: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'p.db'}"
    code, out, _ = cli("migrate", "--store", url, "--dry-run")
    assert code == 0 and "0001 would apply" in out and "migrate would create it" in out
    assert not (tmp_path / "new").exists()
    assert "0001 applied" in cli("migrate", "--store", url)[1]
    assert "0001 already applied" in cli("migrate", "--store", url)[1]
    data = json.loads(cli("history", "pipeshub-default", "--store", url, "--format", "json")[1])
    assert len(data["versions"]) == 1
    assert yaml.safe_load(cli("show", "pipeshub-default", "--store", url)[1])["spec"]["enabled"] is False


def test_the_console_entry_point_publishes(url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc())
    done = subprocess.run(
        [sys.executable, "-m", "engine", "publish", path, "--store", url, "--author", "ana"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"store {url} (file " in done.stderr
    assert done.stdout.startswith("published demo version 1")
