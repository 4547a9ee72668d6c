"""What a policy store hands back, and the interface every backend implements.

Versions are immutable, numbered 1, 2, 3, ... per policy name without gaps; exactly
one of them is active once the first is published. Every change of the active
version is an event in the history, so "who switched what, when and why" is never
lost. Times are RFC 3339 in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

__all__ = [
    "EventKind",
    "History",
    "HistoryEvent",
    "PolicyStore",
    "PublishResult",
    "StoredVersion",
    "WatchHandle",
    "utc_now",
]

EventKind = Literal["published", "activated", "rolled_back", "disabled", "enabled"]


def utc_now() -> str:
    """RFC 3339, UTC, millisecond precision: ``2026-11-25T04:50:32.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: int
    revision: str
    created: bool  # False: an identical document was already there (a no-op or a re-activation)
    active: bool


@dataclass(frozen=True)
class StoredVersion:
    name: str
    version: int
    revision: str
    document: dict[str, Any] = field(repr=False)
    author: str
    comment: str
    created_at: str
    active: bool

    def as_json(self) -> dict[str, Any]:
        """The history row of ``llm-policy history --format json`` (no document)."""
        return {
            "version": self.version,
            "revision": self.revision,
            "author": self.author,
            "comment": self.comment,
            "created_at": self.created_at,
            "active": self.active,
        }


@dataclass(frozen=True)
class HistoryEvent:
    """One change of a policy: ``version`` is the version the event is about;
    ``from_version`` / ``to_version`` the active version before and after (equal when
    the active version did not change, as for a publish with ``activate=False``)."""

    event: EventKind
    version: int
    author: str
    at: str
    comment: str
    from_version: int | None
    to_version: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "version": self.version,
            "author": self.author,
            "at": self.at,
            "comment": self.comment,
            "from": self.from_version,
            "to": self.to_version,
        }


@dataclass(frozen=True)
class History:
    name: str
    versions: list[StoredVersion]  # ascending
    events: list[HistoryEvent]  # in the order they happened

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [v.as_json() for v in self.versions],
            "events": [e.as_json() for e in self.events],
        }


class WatchHandle(Protocol):
    def stop(self) -> None: ...


class PolicyStore(Protocol):
    """Versioned policies with an active pointer and an audit trail.

    Backends: :class:`~engine.store._sqlite.SqliteStore` (embedded default),
    :class:`~engine.store._redis.RedisStore` and :class:`~engine.store._etcd.EtcdStore`
    (PipesHub's key-value store) and :class:`~engine.store._arango.ArangoStore`
    (PipesHub's ``aiconfigs``). Every method raises only
    :class:`~engine.store.StoreError` subclasses.
    """

    url: str  # masked: safe to print

    def publish(
        self,
        document: dict[str, Any],
        *,
        author: str,
        comment: str = "",
        activate: bool = True,
        expected_version: int | None = None,
        dry_run: bool = False,
    ) -> PublishResult: ...

    def get(self, name: str, version: int | None = None) -> StoredVersion: ...

    def active_revision(self, name: str) -> tuple[int, str] | None: ...

    def history(self, name: str) -> History: ...

    def rollback(self, name: str, version: int, *, author: str, comment: str = "") -> StoredVersion: ...

    def disable(self, name: str, *, author: str, comment: str = "") -> PublishResult: ...

    def enable(self, name: str, *, author: str, comment: str = "") -> PublishResult: ...

    def names(self) -> list[str]: ...

    def watch(
        self,
        name: str,
        callback: Callable[[StoredVersion], None],
        *,
        interval: float,
        known: tuple[int, str] | None = None,
    ) -> WatchHandle: ...

    def ensure_schema(self) -> None: ...

    def applied_migrations(self) -> dict[str, str]: ...

    def record_migration(self, migration_id: str, description: str) -> bool: ...

    def close(self) -> None: ...
