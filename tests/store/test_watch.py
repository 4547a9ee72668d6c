"""The hot-reload watcher: an outage is logged once, a failing callback does not stop it."""

from __future__ import annotations

import logging
import threading

import pytest

from engine.store import PolicyStore, Poller, PollingWatch, StoredVersion, open_store

from .helpers import policy_doc


class _Counting:
    """Delegates to a real store and signals once it has been polled ``target`` times."""

    def __init__(self, store: PolicyStore, target: int) -> None:
        self.store, self.url, self.calls, self.target = store, store.url, 0, target
        self.reached = threading.Event()

    def active_revision(self, name: str) -> tuple[int, str] | None:
        self.calls += 1
        if self.calls >= self.target:
            self.reached.set()
        return self.store.active_revision(name)

    def get(self, name: str, version: int | None = None) -> StoredVersion:
        return self.store.get(name, version)


def test_an_unreachable_store_is_logged_once_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    store = open_store("arangodb://root:hunter2@127.0.0.1:9/es")
    counting = _Counting(store, target=4)
    calls: list[StoredVersion] = []
    with caplog.at_level(logging.WARNING, logger="engine.store"):
        watch = PollingWatch(counting, "pipeshub-default", calls.append, interval=0.01)
        try:
            assert counting.reached.wait(30)
            assert watch.running
        finally:
            watch.stop()
            store.close()
    ours = [r for r in caplog.records if r.name == "engine.store"]
    assert len(ours) == 1 and "unreachable" in ours[0].getMessage()
    assert "hunter2" not in ours[0].getMessage() and calls == []


def test_a_failing_callback_does_not_stop_the_watch(store: PolicyStore) -> None:
    first = store.publish(policy_doc(rollout=1), author="ana")
    seen: list[int] = []
    arrived = {2: threading.Event(), 3: threading.Event()}

    def callback(version: StoredVersion) -> None:
        seen.append(version.version)
        arrived[version.version].set()
        if version.version == 2:
            raise RuntimeError("compile failed")

    watch = store.watch("demo", callback, interval=0.01, known=(first.version, first.revision))
    try:
        store.publish(policy_doc(rollout=2), author="ana")
        assert arrived[2].wait(10)
        store.publish(policy_doc(rollout=3), author="ana")
        assert arrived[3].wait(10)
    finally:
        watch.stop()
    assert seen == [2, 3]


def test_poller_reports_each_change_once(store: PolicyStore) -> None:
    poller = Poller(store, "demo")
    assert poller.check() is None
    store.publish(policy_doc(rollout=1), author="ana")
    first = poller.check()
    assert first is not None and first.version == 1
    assert poller.check() is None
    store.rollback("demo", 1, author="ana")
    assert poller.check() is None
    store.publish(policy_doc(rollout=2), author="ana")
    store.rollback("demo", 1, author="ana")
    assert poller.check() is None  # back where the caller already is
    store.rollback("demo", 2, author="ana")
    again = poller.check()
    assert again is not None and again.version == 2
