"""The store as the engine sees it: ``PolicyEngine.from_store`` follows the active version,
on every backend, and keeps its last good policy while the store does not answer."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from engine import PolicyEngine
from engine.store import PolicyStore, open_store

from .conftest import kv_url
from .helpers import policy_doc


def test_the_engine_applies_a_newly_published_version_and_the_kill_switch(
    store_url: str, store: PolicyStore, tmp_path: Path
) -> None:
    store.publish(policy_doc(rollout=10), author="ana")
    engine = PolicyEngine.from_store(
        store_url, "demo", state=f"sqlite:///{tmp_path / 'state.db'}", poll_interval=None
    )
    assert (engine.version, engine.enabled) == (1, True)
    assert engine.reload() is False  # nothing new
    store.publish(policy_doc(rollout=20), author="ana")
    assert engine.reload() is True
    assert engine.version == 2 and engine.policy is not None and engine.policy.spec.rollout == 20
    store.disable("demo", author="oncall")
    assert engine.reload() is True
    assert (engine.version, engine.enabled) == (3, False)


def test_the_engine_polls_the_store_without_a_restart(
    store_url: str, store: PolicyStore, tmp_path: Path
) -> None:
    store.publish(policy_doc(rollout=10), author="ana")
    engine = PolicyEngine.from_store(
        store_url, "demo", state=f"sqlite:///{tmp_path / 'state.db'}", poll_interval=0.05
    )
    try:
        store.publish(policy_doc(rollout=30), author="ana")
        deadline = time.monotonic() + 20
        while engine.version != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.version == 2
    finally:
        engine.close_polling()


def test_the_engine_does_not_create_a_missing_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'p.db'}"
    engine = PolicyEngine.from_store(url, "demo", state=f"sqlite:///{tmp_path / 's.db'}", poll_interval=None)
    assert not engine.enabled and engine.reload() is False
    assert not (tmp_path / "nowhere").exists()
    store = open_store(url)  # created on purpose (what `migrate` does), then published
    store.publish(policy_doc(rollout=10), author="ana")
    assert engine.reload() is True and engine.enabled
    store.close()


@pytest.mark.parametrize("kind", ["redis", "etcd"])
def test_a_store_that_stops_answering_costs_a_timeout_and_the_last_good_policy_stays(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real server is frozen (SIGSTOP): its socket still accepts connections and
    never answers, exactly the hung-server case. Each reload costs one bounded timeout."""
    monkeypatch.setenv("LLM_POLICY_STORE_TIMEOUT", "0.3")
    url = kv_url(request, kind)
    server = request.getfixturevalue(f"{kind}_server")
    store = open_store(url)
    store.ensure_schema()
    store.publish(policy_doc(rollout=10), author="ana")
    engine = PolicyEngine.from_store(url, "demo", state=f"sqlite:///{tmp_path / 's.db'}", poll_interval=None)
    assert (engine.version, engine.enabled) == (1, True)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert [engine.reload() for _ in range(3)] == [False, False, False]
        assert time.monotonic() - started < 30  # bounded (3 x 0.3 s), not 3 x 60 s
        assert (engine.version, engine.enabled) == (1, True)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    store.publish(policy_doc(rollout=20), author="ana")
    assert engine.reload() is True and engine.version == 2
    store.close()
