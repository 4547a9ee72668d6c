"""The on-call path without traps: the store each command used, a store never created by
accident, the kill switch from another directory, the engine's policy, JSON everywhere,
damaged rows, masked passwords, a server that never answers."""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main
from engine.store import open_store

from .helpers import policy_doc

Run = tuple[int, str, str]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LLM_POLICY_NAME", "demo")
    monkeypatch.delenv("LLM_POLICY_STORE", raising=False)

    def run(*argv: str, stdin: str | None = None) -> Run:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def url(tmp_path: Path) -> str:
    address = f"sqlite:///{tmp_path / 'prod' / 'policies.db'}"
    store = open_store(address)
    store.publish(policy_doc(rollout=10), author="ana")
    store.close()
    return address


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def _file(tmp_path: Path, name: str, doc: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(_yaml(doc), encoding="utf-8")
    return str(path)


# -- which store, and never a new one by accident -------------------------------------------


def test_every_store_command_names_the_store_it_used(cli: Any, url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=20))
    db = tmp_path / "prod" / "policies.db"
    for argv in (
        ("publish", path, "--author", "ana"),
        ("show", "demo"),
        ("history", "demo"),
        ("list",),
        ("diff", "demo", "1", "2"),
        ("diff", path),
        ("rollback", "demo", "1", "--author", "ana"),
        ("disable", "demo", "--author", "ana"),
        ("enable", "demo", "--author", "ana"),
        ("migrate",),
        ("explain", "--store", url, "--name", "demo", "--call-site", "x"),
    ):
        code, _, err = cli(*argv, "--store", url) if argv[0] != "explain" else cli(*argv)
        assert code == 0, (argv, err)
        assert f"store {url} (file {db})" in err, argv


@pytest.mark.parametrize(
    "argv",
    [
        ("show", "demo"),
        ("history", "demo"),
        ("list",),
        ("diff", "demo", "1", "2"),
        ("explain", "--name", "demo", "--call-site", "x", "--store"),
        ("disable", "demo", "--author", "oncall"),
        ("rollback", "demo", "1", "--author", "oncall"),
        ("migrate", "--dry-run"),
    ],
)
def test_no_command_but_migrate_creates_a_store(cli: Any, tmp_path: Path, argv: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'p.db'}"
    code, out, err = cli(*argv, url) if argv[-1] == "--store" else cli(*argv, "--store", url)
    assert code == (0 if argv[0] == "migrate" else 4)
    assert "llm-policy migrate" in out + err and str(tmp_path / "nowhere" / "p.db") in out + err
    assert not (tmp_path / "nowhere").exists()


def test_a_deleted_store_is_not_restarted_at_version_1_by_publish(cli: Any, url: str, tmp_path: Path) -> None:
    (tmp_path / "prod" / "policies.db").unlink()
    code, _, err = cli("publish", _file(tmp_path, "p.yaml", policy_doc()), "--store", url, "--author", "ana")
    assert code == 4 and "no policy store at" in err and "llm-policy migrate" in err
    assert not (tmp_path / "prod" / "policies.db").exists()


def _console(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``llm-policy ARGV`` in its own process, started in ``cwd`` (as an on-call would)."""
    full = {k: v for k, v in os.environ.items() if k != "LLM_POLICY_STORE"}
    full.update(PYTHONPATH=str(ROOT), LLM_POLICY_NAME="demo", **env)
    return subprocess.run(
        [sys.executable, "-m", "engine", *argv],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _kill_switch(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _console(cwd, env, "disable", "demo", "--author", "oncall")


def test_the_kill_switch_from_another_directory_acts_on_production_or_fails_loudly(tmp_path: Path) -> None:
    prod_dir, elsewhere = tmp_path / "service", tmp_path / "home"
    prod_dir.mkdir()
    elsewhere.mkdir()
    db = prod_dir / ".llm-policy" / "policies.db"
    store = open_store(f"sqlite:///{db}")
    store.publish(policy_doc(rollout=10), author="ana")
    # The relative default, from the wrong directory: a loud failure that says where it
    # looked, exit 4, and no empty store left behind; production stays on.
    wrong = _kill_switch(elsewhere, {})
    assert wrong.returncode == 4, wrong.stderr
    assert str(elsewhere / ".llm-policy" / "policies.db") in wrong.stderr and "migrate" in wrong.stderr
    assert not (elsewhere / ".llm-policy").exists()
    assert store.get("demo").document["spec"]["enabled"] is True
    # A default store that does exist in the wrong directory: it acts there, and says so.
    migrated = _console(elsewhere, {}, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    local = _kill_switch(elsewhere, {})
    assert "default store under the current directory" in local.stderr
    assert str(elsewhere / ".llm-policy" / "policies.db") in local.stderr
    # The production store named (as a deployment sets $LLM_POLICY_STORE): it acts there.
    right = _kill_switch(elsewhere, {"LLM_POLICY_STORE": f"sqlite:///{db}"})
    assert right.returncode == 0, right.stderr
    assert f"store sqlite:///{db} (file {db})" in right.stderr
    assert "demo: active version 2 (enabled: false" in right.stdout
    assert store.get("demo").document["spec"]["enabled"] is False
    store.close()


# -- the engine's policy, and the active version after a change -----------------------------


def test_switching_a_policy_the_engine_does_not_load_exits_non_zero(
    cli: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_POLICY_NAME", "pipeshub-default")
    code, out, err = cli("disable", "demo", "--store", url, "--author", "oncall")
    assert code == 1
    assert "demo: active version 2 (enabled: false" in out  # the change was made, and said
    assert "not the policy the engine loads ('pipeshub-default'" in err and "LLM_POLICY_NAME" in err
    code, out, err = cli("rollback", "demo", "1", "--store", url, "--author", "oncall", "--format", "json")
    body = json.loads(out)
    assert code == 1 and body["engine_loads_it"] is False and body["engine_policy"] == "pipeshub-default"
    assert body["active"]["version"] == 1
    monkeypatch.delenv("LLM_POLICY_NAME")
    assert cli("enable", "demo", "--store", url, "--author", "oncall")[0] == 1  # the default is not demo


def test_list_marks_the_policy_the_engine_loads(cli: Any, url: str) -> None:
    code, out, _ = cli("list", "--store", url)
    assert code == 0 and "* demo" in out
    code, out, _ = cli("list", "--store", url, "--format", "json")
    body = json.loads(out)
    assert body["engine_policy"] == "demo" and body["store"] == url
    assert [(p["name"], p["version"], p["enabled"], p["engine_loads_it"]) for p in body["policies"]] == [
        ("demo", 1, True, True)
    ]


# -- the new verbs --------------------------------------------------------------------------


def test_publish_dry_run_writes_nothing(cli: Any, url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=20))
    code, out, _ = cli("publish", path, "--store", url, "--author", "ana", "--dry-run")
    assert code == 0 and out.startswith("dry run, nothing written: would publish demo version 2")
    code, out, _ = cli("publish", path, "--store", url, "--author", "ana", "--dry-run", "--format", "json")
    assert json.loads(out) == {
        "store": url,
        "name": "demo",
        "version": 2,
        "revision": json.loads(out)["revision"],
        "created": True,
        "active": True,
        "dry_run": True,
        "outcome": "published",
    }
    assert (
        cli("publish", path, "--store", url, "--author", "ana", "--dry-run", "--expected-version", "0")[0]
        == 3
    )
    assert len(json.loads(cli("history", "demo", "--store", url, "--format", "json")[1])["versions"]) == 1


def test_publish_and_validate_and_diff_read_standard_input(cli: Any, url: str) -> None:
    text = _yaml(policy_doc(rollout=30))
    code, out, _ = cli("validate", "-", stdin=text)
    assert code == 0 and "1 file(s) checked: 1 valid" in out
    code, out, _ = cli("diff", "-", "--store", url, stdin=text)
    assert code == 0 and "-  rollout: 10\n+  rollout: 30\n" in out and "+++ - (" in out
    code, out, _ = cli("publish", "-", "--store", url, "--author", "ana", stdin=text)
    assert code == 0 and out.startswith("published demo version 2")
    code, out, _ = cli("diff", "-", "--store", url, "--format", "json", stdin=text)
    assert json.loads(out)["changed"] is False
    bad = text.replace("rollout: 30", "rollout: 300")
    code, out, err = cli("publish", "-", "--store", url, "--author", "ana", stdin=bad)
    assert code == 1 and out.startswith("<stdin>:") and "schema.range" in out and "nothing was stored" in err


def test_validate_strict_fails_on_warnings(cli: Any, tmp_path: Path) -> None:
    doc = policy_doc(rules=[{"name": "gpt", "match": {"provider": "openai"}, "cache": {"mode": "auto"}}])
    path = _file(tmp_path, "p.yaml", doc)
    code, out, _ = cli("validate", path)
    assert code == 0 and "rule.never-acts" in out and 'rule "gpt" can never act' in out
    code, out, _ = cli("validate", path, "--strict")
    assert code == 1 and "warnings fail" in out
    code, out, _ = cli("validate", path, "--strict", "--format", "json")
    body = json.loads(out)
    assert code == 1 and body["valid"] is False and body["strict"] is True and body["errors"] == []


def test_every_store_command_speaks_json(cli: Any, url: str, tmp_path: Path) -> None:
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=20))
    for argv, keys in (
        (("publish", path, "--author", "ana"), {"name", "version", "created", "outcome"}),
        (("show", "demo"), {"name", "version", "document", "active"}),
        (("history", "demo"), {"name", "versions", "events"}),
        (("diff", "demo", "1", "2"), {"name", "from", "to", "changed", "diff"}),
        (("rollback", "demo", "1", "--author", "ana"), {"name", "changed", "active", "engine_loads_it"}),
        (("disable", "demo", "--author", "ana"), {"name", "changed", "active", "engine_loads_it"}),
        (("enable", "demo", "--author", "ana"), {"name", "changed", "active", "engine_loads_it"}),
        (("list",), {"engine_policy", "policies"}),
        (("migrate",), {"dry_run", "migrations"}),
    ):
        code, out, _ = cli(*argv, "--store", url, "--format", "json")
        body = json.loads(out)
        assert code == 0 and body["store"] == url and keys <= set(body), argv
    code, out, _ = cli("show", "ghost", "--store", url, "--format", "json")
    assert code == 1 and "not found" in json.loads(out)["error"]["message"]


def test_version_flag(cli: Any) -> None:
    with pytest.raises(SystemExit) as done:
        cli("--version")
    assert done.value.code == 0


# -- the store as hostile input ---------------------------------------------------------------


def test_damaged_rows_give_a_clear_error_not_a_traceback(cli: Any, url: str, tmp_path: Path) -> None:
    cli("publish", _file(tmp_path, "p.yaml", policy_doc(rollout=20)), "--store", url, "--author", "ana")
    conn = sqlite3.connect(tmp_path / "prod" / "policies.db")
    with conn:
        conn.execute("UPDATE policy_versions SET document = '{oops' WHERE version = 1")
    for argv in (("history", "demo"), ("show", "demo", "--version", "1"), ("rollback", "demo", "1")):
        extra = ("--author", "oncall") if argv[0] == "rollback" else ()
        code, out, err = cli(*argv, *extra, "--store", url)
        assert code == 1, argv
        assert "damaged record policy_versions row (name='demo', version=1) document: not JSON" in err
        assert "Traceback" not in out + err
    with conn:
        conn.execute("UPDATE policy_heads SET active_version = 'two'")
    conn.close()
    code, _, err = cli("show", "demo", "--store", url)
    assert code == 1 and "policy_heads row (name='demo')" in err and "activeVersion" in err


@pytest.mark.parametrize("password", ["se/cr@t", "p/a:ss", "x//y"])
def test_a_password_is_masked_whatever_it_contains(cli: Any, password: str) -> None:
    for store in (f"redis://ops:{password}@127.0.0.1:9/0", f"arangodb://root:{password}@127.0.0.1:9/es"):
        code, out, err = cli("show", "demo", "--store", store, "--format", "json")
        assert code == 4
        assert password not in out + err and ":***@127.0.0.1:9" in err


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A real socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_store_that_never_answers_is_exit_4_after_the_configured_timeout(
    cli: Any, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_POLICY_STORE_TIMEOUT", "0.3")
    for store in (f"redis://127.0.0.1:{silent_port}/0", f"etcd://127.0.0.1:{silent_port}"):
        code, _, err = cli("disable", "pipeshub-default", "--store", store, "--author", "oncall")
        assert code == 4 and "policy store" in err


@pytest.mark.parametrize("kind", ["redis", "etcd"])
def test_the_on_call_path_on_pipeshubs_key_value_store(
    cli: Any, request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    from .conftest import _drop_kv_prefix, kv_url

    url = kv_url(request, kind)

    def cleanup() -> None:
        store = open_store(url)
        _drop_kv_prefix(store)
        store.close()

    request.addfinalizer(cleanup)
    path = _file(tmp_path, "p.yaml", policy_doc(rollout=10))
    code, _, err = cli("publish", path, "--store", url, "--author", "ana")
    assert code == 4 and "llm-policy migrate" in err  # not created by a publish
    assert cli("migrate", "--store", url)[0] == 0
    code, out, err = cli("publish", path, "--store", url, "--author", "ana")
    assert code == 0 and out.startswith("published demo version 1") and f"store {url}\n" in err
    code, out, _ = cli("disable", "demo", "--store", url, "--author", "oncall", "--format", "json")
    assert code == 0 and json.loads(out)["active"] == {
        "version": 2,
        "revision": json.loads(out)["active"]["revision"],
        "enabled": False,
    }
    code, out, _ = cli("list", "--store", url)
    assert code == 0 and "* demo" in out and "pipeshub-default" in out
