"""The store as the engine sees it: ``PolicyEngine.from_store`` follows the active version."""

from __future__ import annotations

import time
from pathlib import Path

from engine import PolicyEngine
from engine.store import open_store

from .helpers import policy_doc


def test_the_engine_applies_a_newly_published_version_and_the_kill_switch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url)
    store.publish(policy_doc(rollout=10), author="ana")
    engine = PolicyEngine.from_store(
        url, "demo", state=f"sqlite:///{tmp_path / 'state.db'}", poll_interval=None
    )
    assert (engine.version, engine.enabled) == (1, True)
    assert engine.reload() is False  # nothing new
    store.publish(policy_doc(rollout=20), author="ana")
    assert engine.reload() is True
    assert engine.version == 2 and engine.policy is not None and engine.policy.spec.rollout == 20
    store.disable("demo", author="oncall")
    assert engine.reload() is True
    assert (engine.version, engine.enabled) == (3, False)
    store.close()


def test_the_engine_polls_the_store_without_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url)
    store.publish(policy_doc(rollout=10), author="ana")
    engine = PolicyEngine.from_store(
        url, "demo", state=f"sqlite:///{tmp_path / 'state.db'}", poll_interval=0.05
    )
    try:
        store.publish(policy_doc(rollout=30), author="ana")
        deadline = time.monotonic() + 20
        while engine.version != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.version == 2
    finally:
        engine.close_polling()
        store.close()
