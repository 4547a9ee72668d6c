"""Noticing a newly activated version without a restart (the engine's hot reload).

Polling, not push: it works the same on every backend, and each poll is one
cheap read of the head (``active_revision``). An outage is logged once when it
starts and once when it ends, never per poll; the caller keeps what it has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from engine.store._errors import StoreError
from engine.store._model import StoredVersion

__all__ = ["Poller", "PollingWatch"]

log = logging.getLogger("engine.store")


class _Readable(Protocol):
    url: str

    def active_revision(self, name: str) -> tuple[int, str] | None: ...

    def get(self, name: str, version: int | None = None) -> StoredVersion: ...


class Poller:
    """``check()`` returns the active version when it differs from the last one seen.

    ``known`` is the (version, revision) the caller already runs; ``None`` means the
    first active version found is news. Store errors propagate to the caller.
    """

    def __init__(self, store: _Readable, name: str, known: tuple[int, str] | None = None) -> None:
        self.store = store
        self.name = name
        self.known = known

    def check(self) -> StoredVersion | None:
        current = self.store.active_revision(self.name)
        if current is None or current == self.known:
            return None
        version = self.store.get(self.name)
        self.known = (version.version, version.revision)
        return version


class PollingWatch:
    """A daemon thread that polls every ``interval`` seconds and calls ``callback``
    with each newly active version. ``stop()`` ends it (also as a context manager)."""

    def __init__(
        self,
        store: _Readable,
        name: str,
        callback: Callable[[StoredVersion], None],
        *,
        interval: float,
        known: tuple[int, str] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"watch interval must be positive, got {interval}")
        self.poller = Poller(store, name, known)
        self.callback = callback
        self.interval = interval
        self._stopped = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"llm-policy-watch-{name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> PollingWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._poll_once()
            self._stopped.wait(self.interval)

    def _poll_once(self) -> None:
        store, name = self.poller.store, self.poller.name
        try:
            version = self.poller.check()
        except StoreError as exc:
            if not self._failing:
                log.warning(
                    "policy store %s unreachable while watching %r (keeping the current policy): %s",
                    store.url,
                    name,
                    exc,
                )
            self._failing = True
            return
        if self._failing:
            log.warning("policy store %s reachable again; watching %r", store.url, name)
            self._failing = False
        if version is None:
            return
        try:
            self.callback(version)
        except Exception:  # the watcher must outlive a bad callback
            log.exception("policy watch callback failed for %r version %d", name, version.version)
