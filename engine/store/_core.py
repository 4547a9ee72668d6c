"""The rules every backend shares: what a publish, a rollback or a disable changes.

A backend supplies a transaction over one policy's state (read the head, read a
version, commit a :class:`Change` atomically, raising :class:`Raced` when someone
else committed first). The decisions below are pure functions of what the
transaction reads, so SQLite, Redis, etcd and ArangoDB cannot disagree about semantics.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from engine.store._errors import (
    ConflictError,
    DamagedRecordError,
    InvalidPolicyError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from engine.store._model import EventKind, HistoryEvent, PublishResult, StoredVersion, utc_now
from engine.store._validate import ValidPolicy, validate_document
from engine.store._watch import PollingWatch

__all__ = ["BaseStore", "Change", "Head", "Raced", "Txn", "guarded"]

log = logging.getLogger("engine.store")
R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class Head:
    """One policy's pointers; ``token`` is the backend's compare-and-set handle."""

    name: str
    latest_version: int
    latest_revision: str
    active_version: int
    active_revision: str
    event_count: int
    token: Any = None


@dataclass(frozen=True)
class Change:
    """Everything one write stores: maybe a new version, always one event, the new head."""

    new_version: StoredVersion | None
    event: HistoryEvent
    head: Head  # the head after the change (its token is the one read before)


class Raced(Exception):
    """A backend's commit found the head changed since it was read."""

    def __init__(self, latest_version: int) -> None:
        super().__init__(f"raced with version {latest_version}")
        self.latest_version = latest_version


class Txn(Protocol):
    def head(self) -> Head | None: ...

    def load(self, version: int) -> StoredVersion | None: ...

    def commit(self, change: Change) -> None: ...


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """A client library's failure (``store.driver_errors``) becomes the store's
    :class:`StoreUnavailableError` (``store.unavailable``: password masked)."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = cast("BaseStore", args[0])
        try:
            return method(*args, **kwargs)
        except (StoreError, Raced):
            raise
        except store.driver_errors as exc:
            raise store.unavailable(exc) from exc

    return wrapper


class BaseStore:
    """Publish, rollback and disable in terms of a backend's :meth:`_transaction`."""

    url: str
    max_attempts = 20
    #: What the backend's client library raises for a failed request.
    driver_errors: tuple[type[BaseException], ...] = ()

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"policy store {self.url}: {type(exc).__name__}: {exc}")

    def _transaction(self, name: str) -> AbstractContextManager[Txn]:
        raise NotImplementedError

    def active_revision(self, name: str) -> tuple[int, str] | None:
        raise NotImplementedError

    def get(self, name: str, version: int | None = None) -> StoredVersion:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- writes --------------------------------------------------------------------

    def publish(
        self,
        document: dict[str, Any],
        *,
        author: str,
        comment: str = "",
        activate: bool = True,
        expected_version: int | None = None,
        dry_run: bool = False,
    ) -> PublishResult:
        """Store ``document`` as the next version (validated first; identical -> no-op).

        ``dry_run``: decide exactly as a publish would (conflicts included) and write
        nothing; the result says what the publish would have done."""
        policy = validate_document(document)
        _require_author(author)
        return self._write(
            policy.name,
            lambda txn: _decide_publish(
                txn, policy, author, comment, activate, expected_version, "published"
            ),
            dry_run=dry_run,
        )

    def rollback(self, name: str, version: int, *, author: str, comment: str = "") -> StoredVersion:
        """Re-activate an existing version; the history records who did it and from where."""
        _require_author(author)
        return self._write(name, lambda txn: _decide_rollback(txn, name, version, author, comment, self.url))

    def disable(self, name: str, *, author: str, comment: str = "") -> PublishResult:
        """The kill switch: activate a copy of the active version with ``enabled: false``."""
        _require_author(author)
        return self._write(name, lambda txn: _decide_switch(txn, name, False, author, comment))

    def enable(self, name: str, *, author: str, comment: str = "") -> PublishResult:
        """Undo the kill switch: activate a copy of the active version with ``enabled: true``."""
        _require_author(author)
        return self._write(name, lambda txn: _decide_switch(txn, name, True, author, comment))

    def watch(
        self,
        name: str,
        callback: Callable[[StoredVersion], None],
        *,
        interval: float,
        known: tuple[int, str] | None = None,
    ) -> PollingWatch:
        """Call ``callback(active_version)`` from a thread whenever the active revision
        differs from ``known`` (the one the caller already runs). Stop with ``.stop()``."""
        return PollingWatch(self, name, callback, interval=interval, known=known)

    def _write(
        self, name: str, decide: Callable[[Txn], tuple[Change | None, R]], *, dry_run: bool = False
    ) -> R:
        """Run ``decide`` in a transaction; retry when another writer committed first
        (``decide`` runs again on fresh state, so a stale expectation becomes a
        :class:`ConflictError` rather than a lost update). ``dry_run`` commits nothing."""
        latest = 0
        for attempt in range(self.max_attempts):
            try:
                with self._transaction(name) as txn:
                    change, result = decide(txn)
                    if change is not None and not dry_run:
                        txn.commit(change)
                return result
            except Raced as raced:
                latest = raced.latest_version
                log.debug(
                    "store %s: publish of %r raced with version %d (attempt %d)",
                    self.url,
                    name,
                    latest,
                    attempt,
                )
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise ConflictError(
            name, version=latest, expected=None, detail=f"gave up after {self.max_attempts} attempts"
        )


def _require_author(author: str) -> None:
    if not author or not author.strip():
        raise ValueError("author must name who makes the change")


def _decide_publish(
    txn: Txn,
    policy: ValidPolicy,
    author: str,
    comment: str,
    activate: bool,
    expected: int | None,
    kind: EventKind,
) -> tuple[Change | None, PublishResult]:
    head = txn.head()
    latest = head.latest_version if head else 0
    if expected is not None and expected != latest:
        raise ConflictError(policy.name, version=latest, expected=expected)
    if head is not None and policy.revision == head.active_revision:
        return None, PublishResult(
            policy.name, head.active_version, policy.revision, created=False, active=True
        )
    now = utc_now()
    if head is not None and policy.revision == head.latest_revision:
        if not activate:
            return None, PublishResult(policy.name, latest, policy.revision, created=False, active=False)
        again: EventKind = kind if kind in ("disabled", "enabled") else "activated"
        event = HistoryEvent(again, latest, author, now, comment, head.active_version, latest)
        new_head = replace(
            head, active_version=latest, active_revision=policy.revision, event_count=head.event_count + 1
        )
        return Change(None, event, new_head), PublishResult(policy.name, latest, policy.revision, False, True)
    change = _new_version(head, policy, author, comment, activate or head is None, kind, now)
    return change, PublishResult(
        policy.name,
        change.head.latest_version,
        policy.revision,
        True,
        change.head.active_version == change.head.latest_version,
    )


def _new_version(
    head: Head | None,
    policy: ValidPolicy,
    author: str,
    comment: str,
    make_active: bool,
    kind: EventKind,
    now: str,
) -> Change:
    """The next version; ``make_active`` is forced for the first one (one active per policy)."""
    version = (head.latest_version if head else 0) + 1
    stored = StoredVersion(
        policy.name, version, policy.revision, policy.document, author, comment, now, make_active
    )
    before = head.active_version if head else None
    event = HistoryEvent(kind, version, author, now, comment, before, version if make_active else before)
    new_head = Head(
        name=policy.name,
        latest_version=version,
        latest_revision=policy.revision,
        active_version=version if make_active or head is None else head.active_version,
        active_revision=policy.revision if make_active or head is None else head.active_revision,
        event_count=(head.event_count if head else 0) + 1,
        token=head.token if head else None,
    )
    return Change(stored, event, new_head)


def _decide_rollback(
    txn: Txn, name: str, version: int, author: str, comment: str, url: str
) -> tuple[Change | None, StoredVersion]:
    head = txn.head()
    if head is None:
        raise NotFoundError(name)
    target = txn.load(version)
    if target is None:
        raise NotFoundError(name, version, hint=f"it has versions 1..{head.latest_version}")
    _require_intact(target, url)
    if version == head.active_version:
        return None, replace(target, active=True)
    kind: EventKind = "rolled_back" if version < head.active_version else "activated"
    event = HistoryEvent(kind, version, author, utc_now(), comment, head.active_version, version)
    new_head = replace(
        head, active_version=version, active_revision=target.revision, event_count=head.event_count + 1
    )
    return Change(None, event, new_head), replace(target, active=True)


def _require_intact(stored: StoredVersion, url: str) -> None:
    """A version about to become active again must still be the document that was
    validated when it was published: an edit by hand shows as an invalid document or
    one whose revision no longer matches."""
    where = f"version {stored.version} of policy {stored.name!r}"
    try:
        policy = validate_document(stored.document)
    except InvalidPolicyError as exc:
        raise DamagedRecordError(url, where, f"its document no longer validates: {exc}") from exc
    if policy.revision != stored.revision or policy.name != stored.name:
        raise DamagedRecordError(
            url, where, f"its document does not match its revision {stored.revision[:12]} (edited by hand?)"
        )


def _decide_switch(
    txn: Txn, name: str, enabled: bool, author: str, comment: str
) -> tuple[Change | None, PublishResult]:
    """``disable`` / ``enable``: a copy of the active version with ``spec.enabled`` set,
    activated; nothing when it is already so (the language's default is false)."""
    head = txn.head()
    if head is None:
        raise NotFoundError(name)
    active = txn.load(head.active_version)
    if active is None:  # pragma: no cover - a head always points at a stored version
        raise NotFoundError(name, head.active_version)
    spec = active.document.get("spec")
    if isinstance(spec, dict) and spec.get("enabled", False) is enabled:
        return None, PublishResult(name, active.version, active.revision, created=False, active=True)
    document = copy.deepcopy(active.document)
    document["spec"]["enabled"] = enabled
    policy = validate_document(document)
    kind: EventKind = "enabled" if enabled else "disabled"
    note = comment or f"{kind} (copy of version {active.version})"
    return _decide_publish(txn, policy, author, note, True, None, kind)
