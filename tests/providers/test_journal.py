"""The SQLite journal: states, dedup reset, retention, URLs, and no secrets on disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.providers.anthropic.batches import (
    Journal,
    JournalEntry,
    JournalError,
    Outcome,
    SqliteJournal,
    credential_fingerprint,
    open_journal,
    request_hash,
)

KEY = "sk-ant-secret-key-0123456789"


def entry(n: int, **extra: object) -> JournalEntry:
    fp = credential_fingerprint(KEY)
    digest = request_hash({"n": n}, fp, "http://x")
    return JournalEntry(digest, digest, fp, "http://x", "pending", params={"n": n}, **extra)  # type: ignore[arg-type]


def test_lifecycle_and_queries(tmp_path: Path) -> None:
    journal = open_journal(f"sqlite:///{tmp_path}/j.db")
    assert isinstance(journal, Journal)
    a, b, c = entry(1), entry(2), entry(3)
    journal.add([a, b, c])
    assert [e.request_hash for e in journal.pending()] == [a.request_hash, b.request_hash, c.request_hash]
    journal.mark_submitted([a.request_hash, b.request_hash], "msgbatch_1")
    assert journal.open_batches() == [("msgbatch_1", a.credential, "http://x")]
    members = journal.items_in_batch("msgbatch_1")
    assert {e.custom_id for e in members} == {a.custom_id, b.custom_id}
    assert all(e.params is None for e in members), "members are listed without their params"
    journal.record(
        [
            Outcome(a.request_hash, "succeeded", 0, result={"id": "msg_1"}),
            Outcome(b.request_hash, "pending", 1),
        ]
    )
    got = journal.get_many([a.request_hash, b.request_hash, "nope"])
    assert got[a.request_hash].state == "succeeded" and got[a.request_hash].result == {"id": "msg_1"}
    assert got[a.request_hash].params is None, "params are dropped once the answer is kept"
    assert (got[b.request_hash].state, got[b.request_hash].batch_id, got[b.request_hash].attempts) == (
        "pending",
        None,
        1,
    )
    assert journal.open_batches() == []


def test_a_final_answer_is_never_overwritten_and_a_failed_item_can_be_asked_again() -> None:
    journal = SqliteJournal(":memory:")
    a = entry(1)
    journal.add([a])
    journal.record([Outcome(a.request_hash, "succeeded", 0, result={"id": "msg_1"})])
    journal.record([Outcome(a.request_hash, "failed", 3, error="late")])
    journal.add([a])
    assert journal.get_many([a.request_hash])[a.request_hash].result == {"id": "msg_1"}
    b = entry(2)
    journal.add([b])
    journal.record([Outcome(b.request_hash, "failed", 4, error="boom")])
    journal.add([b])
    again = journal.get_many([b.request_hash])[b.request_hash]
    assert (again.state, again.attempts, again.error) == ("pending", 0, None)


def test_prune_removes_only_old_final_items() -> None:
    journal = SqliteJournal(":memory:")
    done, waiting = entry(1), entry(2)
    journal.add([done, waiting])
    journal.record([Outcome(done.request_hash, "succeeded", 0, result={})])
    assert journal.prune(older_than_s=3600) == 0
    time.sleep(0.01)
    assert journal.prune(older_than_s=0) == 1
    assert set(journal.get_many([done.request_hash, waiting.request_hash])) == {waiting.request_hash}


def test_the_file_holds_no_api_key(tmp_path: Path) -> None:
    journal = open_journal(f"sqlite:///{tmp_path}/j.db")
    journal.add([entry(1)])
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
    from engine.providers.anthropic.batches import journal as journal_module
    from engine.providers.anthropic.batches import register_journal_backend

    monkeypatch.setattr(journal_module, "_BACKENDS", {})
    opened: list[tuple[str, float]] = []

    def factory(url: str, retention_s: float) -> Journal:
        opened.append((url, retention_s))
        return SqliteJournal(":memory:", retention_s=retention_s)

    register_journal_backend("memo", factory)
    assert isinstance(open_journal("memo://anything", retention_s=60), SqliteJournal)
    assert opened == [("memo://anything", 60)]
    known = r"known schemes: sqlite, arangodb, arangodb\+http, arangodb\+https, memo$"
    with pytest.raises(JournalError, match=known):
        open_journal("nope://x")
