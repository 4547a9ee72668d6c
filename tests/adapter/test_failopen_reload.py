"""Fail open, and hot reload: a broken policy never applies, each failure is logged once."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog
from engine.store import StoreUnavailableError, open_store
from tests.adapter.conftest import decisions, policy_text, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

MODEL = "claude-sonnet-4-6"
SYSTEM = "Stable instructions for the agent. " * 300
CACHE_CHAT = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 5m, breakpoints: [system]}
"""
CALL = {"metadata": {"call_site": "chat.agent.complete"}}


def _llm(engine: PolicyEngine) -> Any:
    return wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models=MODEL))


def _marked(emulator: Any) -> list[bool]:
    return ["cache_control" in json.dumps(e["body"]) for e in received(emulator)]


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage())


def test_broken_version_never_applies_and_is_logged_once(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(rules=CACHE_CHAT)
    revision = engine.policy.revision if engine.policy else None
    llm = _llm(engine)
    (tmp_path / "policy.yaml").write_text("apiVersion: llm-policy/v1\nkind: Nope\n", encoding="utf-8")
    for _ in range(3):
        assert engine.reload() is False
        llm.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    assert engine.policy is not None and engine.policy.revision == revision
    assert _marked(anthropic_env) == [True, True, True]  # the last good policy stays in force
    assert _warnings(caplog, "not applied") == 1


def test_reload_applies_a_new_version_to_the_next_call(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    engine = make_engine(rules=CACHE_CHAT)
    llm = _llm(engine)
    llm.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    (tmp_path / "policy.yaml").write_text(policy_text(rules=CACHE_CHAT, mode="shadow"), encoding="utf-8")
    assert engine.reload() is True and engine.reload() is False
    llm.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    assert _marked(anthropic_env) == [True, False]
    assert [r["policy"]["mode"] for r in decisions(tmp_path)] == ["enforce", "shadow"]


def test_polling_picks_up_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(enabled=False), encoding="utf-8")
    engine = PolicyEngine.from_file(path, decision_log=DecisionLog([]), poll_interval=0.02)
    try:
        assert not engine.enabled
        path.write_text(policy_text(enabled=True), encoding="utf-8")
        deadline = time.monotonic() + 10
        while not engine.enabled and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.enabled
    finally:
        engine.close_polling()


def test_evaluation_error_sends_the_call_unchanged_logged_once(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm = _llm(make_engine(rules=CACHE_CHAT))
    plain = get_generator_model("anthropic", ai_model_config(models=MODEL))

    def broken(*_: Any) -> Any:
        raise RuntimeError("evaluator bug")

    monkeypatch.setattr(sys.modules["engine.evaluate"], "evaluate", broken)
    messages = [("system", SYSTEM), ("user", "hi")]
    answers = [llm.invoke(messages, config=CALL).content for _ in range(3)]
    assert answers == [plain.invoke(messages).content] * 3
    bodies = [json.dumps(e["body"]) for e in received(anthropic_env)]
    assert len(set(bodies)) == 1 and "cache_control" not in bodies[0]
    assert _warnings(caplog, "evaluation failed") == 1


def test_marker_placement_error_sends_the_call_unchanged(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy_engine = make_engine(rules=CACHE_CHAT)

    class Broken:
        def apply(self, *_: Any, **__: Any) -> Any:
            raise KeyError("allocator bug")

    monkeypatch.setattr(policy_engine, "allocator", lambda transport: Broken())
    llm = _llm(policy_engine)
    for _ in range(2):
        llm.invoke([("system", SYSTEM), ("user", "hi")], config=CALL)
    assert _marked(anthropic_env) == [False, False]
    assert _warnings(caplog, "placing cache markers failed") == 1
    assert all("engine error (KeyError): sent unchanged" in r["reasons"] for r in decisions(tmp_path))


def test_api_rejection_fails_exactly_as_unwrapped(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any
) -> None:
    llm = _llm(make_engine(rules=CACHE_CHAT))
    plain = get_generator_model("anthropic", ai_model_config(models=MODEL))
    tools = [{"name": "lookup", "description": "Look up.", "input_schema": {"type": "object"}}]
    rejected = {"tools": tools, "tool_choice": {"type": "tool", "name": "missing"}}
    messages = [("system", SYSTEM), ("user", "hi")]
    with pytest.raises(Exception) as unwrapped:
        plain.bind(**rejected).invoke(messages)
    with pytest.raises(type(unwrapped.value)) as wrapped:
        llm.bind(**rejected).invoke(messages, config=CALL)
    assert wrapped.value.status_code == unwrapped.value.status_code == 400  # type: ignore[attr-defined]
    assert wrapped.value.body["error"] == unwrapped.value.body["error"]  # type: ignore[attr-defined]


def test_store_unreachable_starts_off_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    engine = PolicyEngine.from_store("arangodb://root:secret@127.0.0.1:9/nodb", poll_interval=None)
    assert not engine.enabled
    assert engine.reload() is False and engine.reload() is False
    spy: list[Any] = []
    llm = wrap_factory(lambda *a, **k: spy.append(get_generator_model(*a, **k)) or spy[-1], engine)(
        "anthropic", ai_model_config()
    )
    assert llm is spy[0]
    failures = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "llm_policy.engine"]
    assert len(failures) == 1 and "secret" not in failures[0].getMessage()


def test_store_versions_apply_on_reload(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/policies.db"
    store = open_store(url)
    first = json.loads(json.dumps(_doc(enabled=False)))
    store.publish(first, author="ops")
    engine = PolicyEngine.from_store(
        url, name="test-policy", decision_log=DecisionLog([]), poll_interval=None
    )
    assert engine.policy is not None and not engine.enabled and engine.version == 1
    store.publish(_doc(enabled=True), author="ops")
    assert engine.reload() is True and engine.enabled and engine.version == 2


def _doc(*, enabled: bool) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(policy_text(enabled=enabled))
    return loaded


def test_a_store_that_goes_away_keeps_the_last_good_policy_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/policies.db"
    open_store(url).publish(_doc(enabled=True), author="ops")
    engine = PolicyEngine.from_store(
        url, name="test-policy", decision_log=DecisionLog([]), poll_interval=None
    )
    assert engine.enabled and engine.version == 1
    store = engine._source._connected()  # type: ignore[union-attr]

    def unreachable(*_: Any, **__: Any) -> Any:
        raise StoreUnavailableError("policy store sqlite:///policies.db unreachable: disk I/O error")

    real = store.active_revision, store.get
    store.active_revision = store.get = unreachable
    assert [engine.reload() for _ in range(3)] == [False, False, False]
    assert engine.enabled and engine.version == 1  # the last good version stays in force
    warned = [r for r in caplog.records if r.name == "llm_policy.engine" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "keeping" in warned[0].getMessage()
    store.active_revision, store.get = real
    open_store(url).publish(_doc(enabled=False), author="ops")
    assert engine.reload() is True and engine.version == 2 and not engine.enabled
