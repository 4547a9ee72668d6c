"""The embedded default store: one SQLite file, standard library only.

Concurrency: WAL (readers never block the writer) and every write in a ``BEGIN
IMMEDIATE`` transaction, which takes the write lock before reading the head, so
two publishers (threads or processes) are serialized by the database itself. The
primary key on (name, version) and a compare-and-set on the head row are the
safety net should that ever be bypassed. Each thread gets its own connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from engine.store._core import BaseStore, Change, Head, Raced
from engine.store._errors import DamagedRecordError, NotFoundError, StoreMissingError, StoreUnavailableError
from engine.store._model import History, HistoryEvent, StoredVersion, utc_now
from engine.store._records import decode_record, event_from, head_from, version_from

__all__ = ["SqliteStore"]

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS policy_heads (
    name            TEXT PRIMARY KEY,
    latest_version  INTEGER NOT NULL,
    latest_revision TEXT NOT NULL,
    active_version  INTEGER NOT NULL,
    active_revision TEXT NOT NULL,
    event_count     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    revision   TEXT NOT NULL,
    document   TEXT NOT NULL,
    author     TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS policy_events (
    name         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    from_version INTEGER,
    to_version   INTEGER,
    author       TEXT NOT NULL,
    comment      TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE TABLE IF NOT EXISTS store_migrations (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);
"""
_HEAD = (
    "SELECT latest_version, latest_revision, active_version, active_revision, event_count FROM policy_heads"
)
_VERSION = "SELECT version, revision, document, author, comment, created_at FROM policy_versions"


def _guarded(method: Callable[P, T]) -> Callable[P, T]:
    """Turn a database failure into :class:`StoreUnavailableError` naming the file."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            store = args[0]
            raise StoreUnavailableError(f"policy store {getattr(store, 'url', '?')}: {exc}") from exc

    return wrapper


class SqliteStore(BaseStore):
    """``create=False`` opens only a file that exists (:class:`StoreMissingError` otherwise),
    so a command run from another directory, or after the file was deleted, fails loudly
    instead of starting an empty store at version 1."""

    def __init__(
        self, path: Path, *, url: str | None = None, timeout: float = 30.0, create: bool = True
    ) -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        if not create:
            if not path.is_file():
                raise StoreMissingError(
                    f"no policy store at {self.url} (no file {path.absolute()}): "
                    "create one with `llm-policy migrate --store URL`, or name the existing one "
                    "with --store or $LLM_POLICY_STORE"
                )
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"policy store {self.url}: cannot create {path.parent}: {exc}"
            ) from exc
        self.ensure_schema()

    # -- connections ---------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:  # a forked child must not reuse its parent's handles
            self._local, self._connections, self._pid = threading.local(), [], os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @_guarded
    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # -- schema and migrations -------------------------------------------------------

    @_guarded
    def ensure_schema(self) -> None:
        self._conn().executescript(_SCHEMA)

    @_guarded
    def applied_migrations(self) -> dict[str, str]:
        rows = self._conn().execute("SELECT id, applied_at FROM store_migrations ORDER BY id")
        return {str(mid): str(at) for mid, at in rows}

    @_guarded
    def record_migration(self, migration_id: str, description: str) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO store_migrations (id, description, applied_at) VALUES (?, ?, ?)",
            (migration_id, description, utc_now()),
        )
        return cur.rowcount == 1

    # -- reads ------------------------------------------------------------------------

    @_guarded
    def active_revision(self, name: str) -> tuple[int, str] | None:
        head = _read_head(self._conn(), name, self.url)
        return (head.active_version, head.active_revision) if head else None

    @_guarded
    def get(self, name: str, version: int | None = None) -> StoredVersion:
        conn = self._conn()
        head = _read_head(conn, name, self.url)
        if head is None:
            raise NotFoundError(name)
        wanted = head.active_version if version is None else version
        row = conn.execute(f"{_VERSION} WHERE name = ? AND version = ?", (name, wanted)).fetchone()
        if row is None:
            raise NotFoundError(name, wanted, hint=f"it has versions 1..{head.latest_version}")
        return _version(name, row, head.active_version, self.url)

    @_guarded
    def history(self, name: str) -> History:
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot for versions, events and the head
        try:
            head = _read_head(conn, name, self.url)
            if head is None:
                raise NotFoundError(name)
            rows = conn.execute(f"{_VERSION} WHERE name = ? ORDER BY version", (name,)).fetchall()
            events = conn.execute(
                "SELECT seq, event, version, author, at, comment, from_version, to_version "
                "FROM policy_events WHERE name = ? ORDER BY seq",
                (name,),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return History(
            name=name,
            versions=[_version(name, row, head.active_version, self.url) for row in rows],
            events=[_event(name, row, self.url) for row in events],
        )

    @_guarded
    def names(self) -> list[str]:
        return [str(r[0]) for r in self._conn().execute("SELECT name FROM policy_heads ORDER BY name")]

    # -- writes -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, name: str) -> Iterator[_SqliteTxn]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"policy store {self.url}: cannot start a write: {exc}") from exc
        try:
            yield _SqliteTxn(conn, name, self.url)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            head = _read_head(conn, name, self.url)
            raise Raced(head.latest_version if head else 0) from exc
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailableError(f"policy store {self.url}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class _SqliteTxn:
    def __init__(self, conn: sqlite3.Connection, name: str, url: str) -> None:
        self.conn = conn
        self.name = name
        self.url = url

    def head(self) -> Head | None:
        return _read_head(self.conn, self.name, self.url)

    def load(self, version: int) -> StoredVersion | None:
        row = self.conn.execute(f"{_VERSION} WHERE name = ? AND version = ?", (self.name, version)).fetchone()
        return _version(self.name, row, -1, self.url) if row else None

    def commit(self, change: Change) -> None:
        new, event, head = change.new_version, change.event, change.head
        if new is not None:
            self.conn.execute(
                "INSERT INTO policy_versions (name, version, revision, document, author, comment, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    new.name,
                    new.version,
                    new.revision,
                    json.dumps(new.document, ensure_ascii=False),
                    new.author,
                    new.comment,
                    new.created_at,
                ),
            )
        self.conn.execute(
            "INSERT INTO policy_events (name, seq, event, version, from_version, to_version, author, "
            "comment, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.name,
                head.event_count,
                event.event,
                event.version,
                event.from_version,
                event.to_version,
                event.author,
                event.comment,
                event.at,
            ),
        )
        self._swap_head(head)

    def _swap_head(self, head: Head) -> None:
        values = (
            head.latest_version,
            head.latest_revision,
            head.active_version,
            head.active_revision,
            head.event_count,
        )
        if head.event_count == 1:
            self.conn.execute(
                "INSERT INTO policy_heads (latest_version, latest_revision, active_version, active_revision, "
                "event_count, name) VALUES (?, ?, ?, ?, ?, ?)",
                (*values, self.name),
            )
            return
        cur = self.conn.execute(
            "UPDATE policy_heads SET latest_version = ?, latest_revision = ?, active_version = ?, "
            "active_revision = ?, event_count = ? WHERE name = ? AND event_count = ?",
            (*values, self.name, head.event_count - 1),
        )
        if cur.rowcount != 1:
            current = _read_head(self.conn, self.name, self.url)
            raise Raced(current.latest_version if current else 0)


# Rows are read through the same strict record models as the other backends, so a row
# edited by hand (text in a number column, a document that is not JSON) is reported by
# table and key instead of surfacing as a ValueError deep in a command.


def _read_head(conn: sqlite3.Connection, name: str, url: str) -> Head | None:
    row = conn.execute(f"{_HEAD} WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    fields = ("latestVersion", "latestRevision", "activeVersion", "activeRevision", "eventCount")
    return head_from(dict(zip(fields, row, strict=True)), name, url, f"policy_heads row (name={name!r})")


def _version(name: str, row: tuple[Any, ...], active_version: int, url: str) -> StoredVersion:
    version, revision, document, author, comment, created_at = row
    where = f"policy_versions row (name={name!r}, version={version!r})"
    if not isinstance(document, str):
        raise DamagedRecordError(
            url, where, f"document: a JSON text was expected, found {type(document).__name__}"
        )
    fields = {"name": name, "version": version, "revision": revision, "author": author, "comment": comment}
    doc = {**fields, "createdAt": created_at, "document": decode_record(document, url, f"{where} document")}
    return version_from(doc, active_version, url, where)


def _event(name: str, row: tuple[Any, ...], url: str) -> HistoryEvent:
    seq, event, version, author, at, comment, from_version, to_version = row
    doc = {
        "event": event, "targetVersion": version, "author": author, "at": at, "comment": comment,
        "fromVersion": from_version, "toVersion": to_version,
    }  # fmt: skip
    return event_from(doc, url, f"policy_events row (name={name!r}, seq={seq!r})")
