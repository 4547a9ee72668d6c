"""The SQLite journal: URLs, retention, failures as JournalError, older files, no secrets on disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import engine.journal as journal_module
from engine.journal import Journal, JournalEntry, JournalError, Lease, Outcome, SqliteJournal, open_journal
from engine.providers.anthropic.batches import credential_fingerprint, request_hash

KEY = "sk-ant-secret-key-0123456789"


def entry(n: int, **extra: object) -> JournalEntry:
    fp = credential_fingerprint(KEY)
    digest = request_hash({"n": n}, fp, "http://x")
    return JournalEntry(digest, digest, fp, "http://x", "pending", params={"n": n}, **extra)  # type: ignore[arg-type]


OWNER = Lease("me")


def test_prune_removes_only_old_final_items() -> None:
    journal = SqliteJournal(":memory:")
    done, waiting = entry(1), entry(2)
    journal.claim([done, waiting], OWNER)
    journal.record([Outcome(done.request_hash, "succeeded", 0, result={})])
    assert journal.prune(older_than_s=3600) == 0
    time.sleep(0.01)
    assert journal.prune(older_than_s=0) == 1
    assert set(journal.get_many([done.request_hash, waiting.request_hash])) == {waiting.request_hash}


def test_the_file_holds_no_api_key(tmp_path: Path) -> None:
    journal = open_journal(f"sqlite:///{tmp_path}/j.db")
    journal.claim([entry(1)], OWNER)
    journal.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert KEY.encode() not in raw
    assert credential_fingerprint(KEY).encode() in raw


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x/y", "unsupported journal URL scheme 'postgres'"),
        ("sqlite://relative.db", "bad journal URL 'sqlite://relative.db'"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(JournalError, match=message):
        open_journal(url)


def test_default_location_is_under_dot_llm_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_journal().close()
    assert (tmp_path / ".llm-policy" / "state.db").exists()


def test_request_hash_ignores_markers_and_string_form_but_not_tenant() -> None:
    fp = credential_fingerprint(KEY)
    plain = {"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi"}]}
    marked = {
        "model": "m",
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert request_hash(plain, fp, "http://x") == request_hash(marked, fp, "http://x")
    assert request_hash(plain, fp, "http://x") != request_hash(
        plain, credential_fingerprint("other"), "http://x"
    )
    assert request_hash(plain, fp, "http://x") != request_hash(plain, fp, "http://y")


def test_other_backends_plug_in_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.journal import register_journal_backend

    monkeypatch.setattr(journal_module, "_BACKENDS", dict(journal_module._BACKENDS))
    opened: list[tuple[str, float]] = []

    def factory(url: str, retention_s: float) -> Journal:
        opened.append((url, retention_s))
        return SqliteJournal(":memory:", retention_s=retention_s)

    register_journal_backend("memo", factory)
    assert isinstance(open_journal("memo://anything", retention_s=60), SqliteJournal)
    assert opened == [("memo://anything", 60)]
    known = r"known schemes: arangodb, arangodb\+http, arangodb\+https, memo, redis, rediss, sqlite$"
    with pytest.raises(JournalError, match=known):
        open_journal("nope://x")


def test_sqlite_failures_come_out_as_journal_errors(tmp_path: Path) -> None:
    """A corrupt file, or one another process holds locked, is a JournalError (the caller goes direct)."""
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"corrupt\.db"):
        open_journal(f"sqlite:///{bad}")
    path = tmp_path / "locked.db"
    holder = SqliteJournal(path)
    waiter = SqliteJournal(path, busy_timeout_s=0.05)
    import sqlite3

    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError, match="locked"):
            waiter.claim([entry(1)], OWNER)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    waiter.claim([entry(1)], OWNER)
    holder.close()
    waiter.close()


def test_a_journal_written_before_ownership_opens_and_its_pending_rows_count_as_sent(tmp_path: Path) -> None:
    """Rows of an older version gain owner columns; a pending row may have been sent, so it
    carries sent_at and a resume looks for its batch before sending it."""
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE batch_items (request_hash TEXT PRIMARY KEY, custom_id TEXT NOT NULL, "
        "credential TEXT NOT NULL, base_url TEXT NOT NULL, state TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, batch_id TEXT, call_site TEXT, "
        "retries INTEGER NOT NULL DEFAULT 3, on_failure TEXT NOT NULL DEFAULT 'direct', params TEXT, "
        "result TEXT, error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        "INSERT INTO batch_items VALUES "
        "('h1','c1','fp','u','pending',0,NULL,NULL,3,'direct','{}',NULL,NULL,5,7);"
    )
    db.commit()
    db.close()
    journal = SqliteJournal(path)
    [row] = journal.take_over(OWNER)
    assert (row.request_hash, row.sent_at, row.owner) == ("h1", 7.0, "me")
    journal.close()


#: A child that waits for the starting gun, then opens the journal (imports only the journal).
_OPENER = """
import os, sys, time
from engine.journal.sqlite import SqliteJournal
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
SqliteJournal(sys.argv[1]).close()
"""


@pytest.mark.parametrize("old_file", [False, True], ids=["new file", "older file"])
def test_processes_opening_one_journal_at_once_all_open_it(tmp_path: Path, old_file: bool) -> None:
    """PipesHub starts several services from one folder at the same moment: every one of them
    must open the shared journal, none may fail on another's schema change."""
    import sqlite3
    import subprocess
    import sys

    for attempt in range(3):
        path, gun = tmp_path / f"shared{attempt}.db", tmp_path / f"go{attempt}"
        if old_file:
            db = sqlite3.connect(path)
            db.execute(
                "CREATE TABLE batch_items (request_hash TEXT PRIMARY KEY, custom_id TEXT NOT NULL, "
                "credential TEXT NOT NULL, base_url TEXT NOT NULL, state TEXT NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, batch_id TEXT, call_site TEXT, "
                "retries INTEGER NOT NULL DEFAULT 3, on_failure TEXT NOT NULL DEFAULT 'direct', params TEXT, "
                "result TEXT, error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL)"
            )
            db.commit()
            db.close()
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _OPENER, str(path), str(gun)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(8)
        ]
        time.sleep(0.3)  # every child is waiting at the gun
        gun.touch()
        failures = [err for err in (worker.communicate(timeout=60)[1] for worker in workers) if err]
        assert failures == []
        columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(batch_items)")}
        assert {"owner", "lease_expires", "sent_at"} <= columns
