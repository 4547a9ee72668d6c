"""The durable journal of batch items: what was sent, where it is, what came back.

Every request routed to a batch is written here before it is sent, marked with
its batch id once the API accepted the batch, and given its result the moment the
result is read. So a crash loses nothing: on start, :meth:`BatchService.resume`
collects batches that were submitted but not collected, and an identical request
arriving later (a redelivered message, a restarted worker) is answered from here
instead of being paid for again.

Item states::

    pending ──submit──▶ submitted ──result──▶ succeeded
       ▲                    │                 direct   (answered by a direct call)
       └──── retry ─────────┘                 failed   (retries spent, onFailure: error)

:class:`Journal` is the protocol every backend implements (the embedded default is
:class:`SqliteJournal`; an ArangoDB backend plugs in through :func:`open_journal`).
Backends store no API key: only the credential's fingerprint, which the service
hands back to a ``client_for(fingerprint, base_url)`` callback on resume.
Finished items older than the retention limit are pruned.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_JOURNAL_URL",
    "FINAL_STATES",
    "ItemState",
    "Journal",
    "JournalEntry",
    "JournalError",
    "Outcome",
    "SqliteJournal",
    "open_journal",
    "register_journal_backend",
]

ItemState = Literal["pending", "submitted", "succeeded", "direct", "failed"]
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "direct", "failed"})
DEFAULT_JOURNAL_URL = "sqlite:///.llm-policy/state.db"
DEFAULT_RETENTION_S = 7 * 24 * 3600


class JournalError(Exception):
    """The journal cannot be opened or written (bad URL, unwritable path)."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request's row. ``params`` is kept until the item is final (to retry it after a restart)."""

    request_hash: str
    custom_id: str
    credential: str
    base_url: str
    state: ItemState
    attempts: int = 0
    batch_id: str | None = None
    call_site: str | None = None
    retries: int = 3
    on_failure: str = "direct"
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class Outcome:
    """A state change for :meth:`Journal.record`: the result (final) or a retry (back to pending)."""

    request_hash: str
    state: ItemState
    attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None


@runtime_checkable
class Journal(Protocol):
    """What :class:`BatchService` needs from a durable store. All methods are synchronous and atomic."""

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        """The entries that exist among ``hashes``."""

    def add(self, entries: Sequence[JournalEntry]) -> None:
        """Insert new entries; an existing ``pending`` or ``failed`` one is reset from the new one.

        Entries that are ``submitted`` or answered stay as they are.
        """

    def mark_submitted(self, hashes: Sequence[str], batch_id: str) -> None:
        """These items were accepted by the API as part of ``batch_id``."""

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Apply state changes (results, failures, retries) in one transaction."""

    def open_batches(self) -> list[tuple[str, str, str]]:
        """(batch id, credential fingerprint, base URL) of batches submitted but not collected."""

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        """Non-final items of ``batch_id``, without ``params`` (fetch those with ``get_many``)."""

    def pending(self) -> list[JournalEntry]:
        """Items written but never accepted by the API (a crash before or during submission)."""

    def prune(self, older_than_s: float | None = None) -> int:
        """Delete final items not touched for ``older_than_s`` (default: the retention limit)."""

    def close(self) -> None: ...


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
_COLUMNS = (
    "request_hash, custom_id, credential, base_url, state, attempts, batch_id, call_site, retries, "
    "on_failure, params, result, error, created_at, updated_at"
)
_CHUNK = 900  # under SQLite's default limit of host parameters


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value: dict[str, Any] = json.loads(text)
    return value


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        request_hash=row["request_hash"],
        custom_id=row["custom_id"],
        credential=row["credential"],
        base_url=row["base_url"],
        state=row["state"],
        attempts=row["attempts"],
        batch_id=row["batch_id"],
        call_site=row["call_site"],
        retries=row["retries"],
        on_failure=row["on_failure"],
        params=_loads(row["params"]),
        result=_loads(row["result"]),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SqliteJournal:
    """The embedded journal: one SQLite file, WAL mode, safe to share between threads.

    WAL with ``synchronous=NORMAL`` keeps every committed transaction across a
    crash of the process (``kill -9``); only a power loss may drop the newest ones.
    """

    def __init__(self, path: str | Path, *, retention_s: float = DEFAULT_RETENTION_S) -> None:
        self.path = Path(path)
        self.retention_s = retention_s
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the batch journal at {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def _write(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _select(self, sql: str, args: Sequence[Any] = ()) -> list[JournalEntry]:
        with self._lock:
            return [_entry(row) for row in self._db.execute(sql, args).fetchall()]

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(list(hashes)):
            marks = ",".join("?" * len(chunk))
            for entry in self._select(
                f"SELECT {_COLUMNS} FROM batch_items WHERE request_hash IN ({marks})", chunk
            ):
                found[entry.request_hash] = entry
        return found

    def add(self, entries: Sequence[JournalEntry]) -> None:
        now = time.time()
        sql = (
            f"INSERT INTO batch_items ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(request_hash) DO UPDATE SET state='pending', attempts=excluded.attempts, "
            "batch_id=NULL, params=excluded.params, result=NULL, error=NULL, retries=excluded.retries, "
            "on_failure=excluded.on_failure, call_site=excluded.call_site, updated_at=excluded.updated_at "
            "WHERE batch_items.state IN ('failed', 'pending')"
        )
        rows = (
            (e.request_hash, e.custom_id, e.credential, e.base_url, e.state, e.attempts, e.batch_id,
             e.call_site, e.retries, e.on_failure, _dumps(e.params), _dumps(e.result), e.error, now, now)
            for e in entries
        )  # fmt: skip
        self._write(sql, rows)

    def mark_submitted(self, hashes: Sequence[str], batch_id: str) -> None:
        now = time.time()
        sql = (
            "UPDATE batch_items SET state='submitted', batch_id=?, updated_at=? "
            "WHERE request_hash=? AND state='pending'"
        )
        self._write(sql, ((batch_id, now, h) for h in hashes))

    def record(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        sql = (
            "UPDATE batch_items SET state=?, attempts=?, result=?, error=?, updated_at=?, "
            "batch_id=CASE WHEN ?='pending' THEN NULL ELSE batch_id END, "
            "params=CASE WHEN ? IN ('succeeded','direct') THEN NULL ELSE params END "
            "WHERE request_hash=? AND state NOT IN ('succeeded','direct')"
        )
        rows = (
            (o.state, o.attempts, _dumps(o.result), o.error, now, o.state, o.state, o.request_hash)
            for o in outcomes
        )
        self._write(sql, rows)

    def open_batches(self) -> list[tuple[str, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT batch_id, credential, base_url FROM batch_items "
                "WHERE state='submitted' ORDER BY batch_id"
            ).fetchall()
        return [(r["batch_id"], r["credential"], r["base_url"]) for r in rows]

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        light = _COLUMNS.replace("params,", "NULL AS params,")
        sql = f"SELECT {light} FROM batch_items WHERE batch_id=? AND state='submitted'"
        return self._select(sql, (batch_id,))

    def pending(self) -> list[JournalEntry]:
        return self._select(f"SELECT {_COLUMNS} FROM batch_items WHERE state='pending' ORDER BY created_at")

    def prune(self, older_than_s: float | None = None) -> int:
        cutoff = time.time() - (self.retention_s if older_than_s is None else older_than_s)
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM batch_items WHERE state IN ('succeeded','direct','failed') AND updated_at < ?",
                (cutoff,),
            )
            return int(cursor.rowcount)

    def counts(self) -> dict[str, int]:
        """Items per state (for status displays and tests)."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM batch_items GROUP BY state").fetchall()
        return {r["state"]: int(r["n"]) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise JournalError(
            f"bad journal URL {url!r}: write sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    return rest[1:]  # "/rel.db" -> "rel.db"; "//abs.db" -> "/abs.db"


_BACKENDS: dict[str, Callable[[str, float], Journal]] = {}


def _arango(url: str, retention_s: float) -> Journal:
    # Imported on use: python-arango is only loaded by deployments that journal there.
    from engine.store.arango_journal import arango_journal_from_url

    return arango_journal_from_url(url, retention_s=retention_s)


#: Backends that ship with the engine; the same URLs as the policy store.
_BUILTIN_BACKENDS: dict[str, Callable[[str, float], Journal]] = {
    "arangodb": _arango,
    "arangodb+http": _arango,
    "arangodb+https": _arango,
}


def register_journal_backend(scheme: str, factory: Callable[[str, float], Journal]) -> None:
    """Let ``open_journal`` open ``scheme://...`` URLs with ``factory(url, retention_s)``.

    How another store (ArangoDB) plugs in without this module knowing about it.
    """
    _BACKENDS[scheme] = factory


def open_journal(url: str | None = None, *, retention_s: float = DEFAULT_RETENTION_S) -> Journal:
    """Open the journal named by ``url`` (default ``sqlite:///.llm-policy/state.db``).

    ``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db``
    absolute, ``sqlite:///:memory:`` in memory (tests); ``arangodb://user:pass@host:8529/db``
    the ArangoDB journal; other schemes go to the backend registered for them. Final
    items are pruned once older than ``retention_s``.
    """
    url = url or DEFAULT_JOURNAL_URL
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        journal: Journal = SqliteJournal(_sqlite_path(url), retention_s=retention_s)
    elif scheme in _BACKENDS or scheme in _BUILTIN_BACKENDS:
        journal = (_BACKENDS.get(scheme) or _BUILTIN_BACKENDS[scheme])(url, retention_s)
    else:
        known = ", ".join(["sqlite", *sorted({*_BACKENDS, *_BUILTIN_BACKENDS})])
        raise JournalError(
            f"unsupported journal URL scheme {scheme or url!r} in {url!r}: known schemes: {known}"
        )
    journal.prune()
    return journal
