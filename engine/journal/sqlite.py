"""The embedded journal: one SQLite file, WAL mode, safe to share between threads and processes.

WAL with ``synchronous=NORMAL`` keeps every committed transaction across a crash of
the process (``kill -9``); only a power loss may drop the newest ones. Processes
that share the file serialise their writes (``BEGIN IMMEDIATE``) and wait up to
``busy_timeout_s`` for each other; ownership (see :mod:`engine.journal.protocol`)
keeps them from sending each other's items. Every SQLite error comes out as
:class:`JournalError`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.journal.protocol import (
    DEFAULT_RETENTION_S,
    JournalEntry,
    JournalError,
    Lease,
    Outcome,
    takes_over,
)

__all__ = ["SqliteJournal", "sqlite_path"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_items (
    request_hash TEXT PRIMARY KEY,
    custom_id    TEXT NOT NULL,
    credential   TEXT NOT NULL,
    base_url     TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    batch_id     TEXT,
    call_site    TEXT,
    retries      INTEGER NOT NULL DEFAULT 3,
    on_failure   TEXT NOT NULL DEFAULT 'direct',
    params       TEXT,
    result       TEXT,
    error        TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_items_open ON batch_items(state, batch_id);
CREATE INDEX IF NOT EXISTS batch_items_age ON batch_items(updated_at);
"""
#: Columns added after the first release: a journal written by an older version gains them on open.
_ADDED = {"owner": "TEXT", "lease_expires": "REAL NOT NULL DEFAULT 0", "sent_at": "REAL"}
_COLUMNS = (
    "request_hash, custom_id, credential, base_url, state, attempts, batch_id, call_site, retries, "
    "on_failure, params, result, error, created_at, updated_at, owner, lease_expires, sent_at"
)
_CHUNK = 900  # under SQLite's default limit of host parameters
_OPEN = "state IN ('pending','submitted')"


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value: dict[str, Any] = json.loads(text)
    return value


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        request_hash=row["request_hash"], custom_id=row["custom_id"], credential=row["credential"],
        base_url=row["base_url"], state=row["state"], attempts=row["attempts"], batch_id=row["batch_id"],
        call_site=row["call_site"], retries=row["retries"], on_failure=row["on_failure"],
        params=_loads(row["params"]), result=_loads(row["result"]), error=row["error"],
        created_at=row["created_at"], updated_at=row["updated_at"], owner=row["owner"],
        lease_expires=row["lease_expires"], sent_at=row["sent_at"],
    )  # fmt: skip


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqliteJournal:
    """The embedded :class:`~engine.journal.protocol.Journal`."""

    def __init__(
        self, path: str | Path, *, retention_s: float = DEFAULT_RETENTION_S, busy_timeout_s: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.retention_s = retention_s
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=busy_timeout_s
            )
            self._db.row_factory = sqlite3.Row
            self._wal(busy_timeout_s)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the batch journal at {path}: {exc}") from exc

    def _wal(self, wait_s: float) -> None:
        """Switch the file to WAL, waiting out a neighbour doing the same.

        Changing the journal mode does not go through SQLite's busy handler: a process opening
        the file while another one switches it gets "database is locked" at once.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        """Create or upgrade the schema in one write transaction.

        Services started together open the same file at the same instant; holding the write
        lock while reading the columns means exactly one of them adds a missing column and the
        others see it added, instead of failing on "duplicate column name".
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            have = {row["name"] for row in self._db.execute("PRAGMA table_info(batch_items)")}
            for name, kind in _ADDED.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE batch_items ADD COLUMN {name} {kind}")
                    if name == "sent_at":  # an older version may have sent its pending rows
                        self._db.execute("UPDATE batch_items SET sent_at=updated_at WHERE state='pending'")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- plumbing ----------------------------------------------------------------------

    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """One transaction; every SQLite failure (locked, corrupt, full) as JournalError."""
        with self._lock:
            try:
                if not write:
                    return work(self._db)
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                raise JournalError(f"batch journal {self.path}: {type(exc).__name__}: {exc}") from exc

    def _rows(self, db: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(list(hashes)):
            sql = f"SELECT {_COLUMNS} FROM batch_items WHERE request_hash IN ({_marks(len(chunk))})"
            for row in db.execute(sql, tuple(chunk)).fetchall():
                found[row["request_hash"]] = _entry(row)
        return found

    # -- the protocol --------------------------------------------------------------------

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        return self._run(lambda db: self._rows(db, hashes), write=False)

    def claim(
        self, entries: Sequence[JournalEntry], lease: Lease, stale_before: float | None = None
    ) -> dict[str, JournalEntry]:
        def work(db: sqlite3.Connection) -> dict[str, JournalEntry]:
            now = time.time()
            expires = now + lease.ttl_s
            hashes = [e.request_hash for e in entries]
            existing = self._rows(db, hashes)
            for e in entries:
                old = existing.get(e.request_hash)
                if old is None:
                    db.execute(
                        f"INSERT INTO batch_items ({_COLUMNS}) VALUES ({_marks(18)})",
                        (e.request_hash, e.custom_id, e.credential, e.base_url, "pending", e.attempts, None,
                         e.call_site, e.retries, e.on_failure, _dumps(e.params), None, None, now, now,
                         lease.owner, expires, None),
                    )  # fmt: skip
                    continue
                action = takes_over(old, now, stale_before)
                if action == "reset":
                    db.execute(
                        "UPDATE batch_items SET state='pending', attempts=0, batch_id=NULL, sent_at=NULL, "
                        "params=?, result=NULL, error=NULL, retries=?, on_failure=?, call_site=?, "
                        "owner=?, lease_expires=?, updated_at=? WHERE request_hash=?",
                        (_dumps(e.params), e.retries, e.on_failure, e.call_site, lease.owner, expires, now,
                         e.request_hash),
                    )  # fmt: skip
                elif action == "adopt":
                    db.execute(
                        "UPDATE batch_items SET owner=?, lease_expires=?, updated_at=?, "
                        "params=COALESCE(params, ?) WHERE request_hash=?",
                        (lease.owner, expires, now, _dumps(e.params), e.request_hash),
                    )
            return self._rows(db, hashes)

        return self._run(work, write=True)

    def _owned(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._run(lambda db: db.executemany(sql, rows), write=True)

    def mark_sending(self, hashes: Sequence[str], lease: Lease) -> None:
        now = time.time()
        sql = (
            "UPDATE batch_items SET sent_at=?, updated_at=? "
            "WHERE request_hash=? AND owner=? AND state='pending'"
        )
        self._owned(sql, [(now, now, h, lease.owner) for h in hashes])

    def mark_submitted(self, hashes: Sequence[str], batch_id: str, lease: Lease) -> None:
        now = time.time()
        sql = (
            "UPDATE batch_items SET state='submitted', batch_id=?, updated_at=? "
            "WHERE request_hash=? AND owner=? AND state='pending'"
        )
        self._owned(sql, [(batch_id, now, h, lease.owner) for h in hashes])

    def record(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        sql = (
            "UPDATE batch_items SET state=?, attempts=?, result=?, error=?, updated_at=?, "
            "batch_id=CASE WHEN ?='pending' THEN NULL ELSE batch_id END, "
            "sent_at=CASE WHEN ?='pending' THEN NULL ELSE sent_at END, "
            "params=CASE WHEN ? IN ('succeeded','direct','failed') THEN NULL ELSE params END "
            "WHERE request_hash=? AND state NOT IN ('succeeded','direct')"
        )
        rows = [
            (o.state, o.attempts, _dumps(o.result), o.error, now, o.state, o.state, o.state, o.request_hash)
            for o in outcomes
        ]
        self._owned(sql, rows)

    def renew(self, lease: Lease) -> int:
        def work(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                f"UPDATE batch_items SET lease_expires=? WHERE owner=? AND {_OPEN}",
                (time.time() + lease.ttl_s, lease.owner),
            )
            return int(cursor.rowcount)

        return self._run(work, write=True)

    def take_over(self, lease: Lease) -> list[JournalEntry]:
        def work(db: sqlite3.Connection) -> list[JournalEntry]:
            now = time.time()
            rows = db.execute(
                f"SELECT request_hash FROM batch_items WHERE {_OPEN} AND lease_expires < ?", (now,)
            ).fetchall()
            hashes = [r["request_hash"] for r in rows]
            db.executemany(
                "UPDATE batch_items SET owner=?, lease_expires=? WHERE request_hash=?",
                [(lease.owner, now + lease.ttl_s, h) for h in hashes],
            )
            found = self._rows(db, hashes)
            return sorted(found.values(), key=lambda e: e.created_at)

        return self._run(work, write=True)

    def release(self, lease: Lease, hashes: Sequence[str] | None = None) -> None:
        if hashes is None:
            sql = f"UPDATE batch_items SET lease_expires=0 WHERE owner=? AND {_OPEN}"
            self._owned(sql, [(lease.owner,)])
            return
        sql = f"UPDATE batch_items SET lease_expires=0 WHERE request_hash=? AND owner=? AND {_OPEN}"
        self._owned(sql, [(h, lease.owner) for h in hashes])

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        light = _COLUMNS.replace("params,", "NULL AS params,")
        sql = f"SELECT {light} FROM batch_items WHERE batch_id=? AND state='submitted'"
        return self._run(lambda db: [_entry(r) for r in db.execute(sql, (batch_id,)).fetchall()], write=False)

    def prune(self, older_than_s: float | None = None) -> int:
        cutoff = time.time() - (self.retention_s if older_than_s is None else older_than_s)
        sql = "DELETE FROM batch_items WHERE state IN ('succeeded','direct','failed') AND updated_at < ?"
        return self._run(lambda db: int(db.execute(sql, (cutoff,)).rowcount), write=True)

    def counts(self) -> dict[str, int]:
        """Items per state (for status displays and tests)."""
        sql = "SELECT state, COUNT(*) AS n FROM batch_items GROUP BY state"
        rows = self._run(lambda db: db.execute(sql).fetchall(), write=False)
        return {r["state"]: int(r["n"]) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///rel.db`` / ``sqlite:////abs.db`` URL."""
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise JournalError(
            f"bad journal URL {url!r}: write sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    return rest[1:]  # "/rel.db" -> "rel.db"; "//abs.db" -> "/abs.db"
