"""The batch journal's two backends obey one contract: SQLite always, ArangoDB with ARANGO_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from engine.providers.anthropic.batches.journal import (
    Journal,
    JournalEntry,
    JournalError,
    Outcome,
    open_journal,
)

from .conftest import ARANGO_SKIP


@pytest.fixture(params=["sqlite", "arangodb"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "sqlite":
        j: Journal = open_journal(f"sqlite:///{tmp_path / 'state.db'}")
        yield j
        j.close()
        return
    if not os.environ.get("ARANGO_URL"):
        pytest.skip(ARANGO_SKIP)
    from engine.store.arango_journal import open_arango_journal

    aj = open_arango_journal(
        f"arangodb:///{os.environ.get('ARANGO_DB', '_system')}",
        collection=f"llmBatchTest{uuid.uuid4().hex[:12]}",
    )
    yield aj
    aj._db.delete_collection(aj.collection)
    aj.close()


def _entry(n: int, **changes: object) -> JournalEntry:
    base = JournalEntry(
        request_hash=f"h{n:03d}",
        custom_id=f"c{n}",
        credential="fp-1",
        base_url="https://api.anthropic.com",
        state="pending",
        call_site="indexing.table_rows",
        params={"model": "claude-sonnet-4-5", "n": n},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_items_round_trip(journal: Journal) -> None:
    journal.add([_entry(1), _entry(2)])
    got = journal.get_many(["h001", "h002", "nope"])
    assert sorted(got) == ["h001", "h002"]
    assert got["h001"].params == {"model": "claude-sonnet-4-5", "n": 1}
    assert (got["h001"].state, got["h001"].call_site, got["h001"].credential) == (
        "pending",
        "indexing.table_rows",
        "fp-1",
    )
    assert [e.request_hash for e in journal.pending()] == ["h001", "h002"]


def test_submission_results_and_retries_follow_the_state_rules(journal: Journal) -> None:
    journal.add([_entry(1), _entry(2), _entry(3)])
    journal.mark_submitted(["h001", "h002", "h003"], "msgbatch_1")
    assert journal.open_batches() == [("msgbatch_1", "fp-1", "https://api.anthropic.com")]
    light = journal.items_in_batch("msgbatch_1")
    assert sorted(e.request_hash for e in light) == ["h001", "h002", "h003"]
    assert all(e.params is None for e in light)
    journal.record(
        [
            Outcome("h001", "succeeded", 1, result={"type": "message", "id": "m1"}),
            Outcome("h002", "pending", 1, error="expired"),
        ]
    )
    got = journal.get_many(["h001", "h002", "h003"])
    assert (got["h001"].state, got["h001"].result, got["h001"].params) == (
        "succeeded",
        {"type": "message", "id": "m1"},
        None,
    )
    assert (got["h002"].state, got["h002"].batch_id, got["h002"].error) == ("pending", None, "expired")
    assert got["h002"].params is not None
    assert got["h003"].state == "submitted"
    journal.record([Outcome("h001", "failed", 9, error="late")])  # a final success is never overwritten
    assert journal.get_many(["h001"])["h001"].state == "succeeded"
    journal.mark_submitted(["h001"], "msgbatch_2")  # only pending items can be submitted
    assert journal.get_many(["h001"])["h001"].batch_id == "msgbatch_1"


def test_adding_again_resets_only_pending_or_failed_items(journal: Journal) -> None:
    journal.add([_entry(1), _entry(2)])
    journal.record(
        [Outcome("h001", "succeeded", 1, result={"id": "m1"}), Outcome("h002", "failed", 3, error="x")]
    )
    journal.add([_entry(1, params={"n": "new"}), _entry(2, params={"n": "new"})])
    got = journal.get_many(["h001", "h002"])
    assert (got["h001"].state, got["h001"].result) == ("succeeded", {"id": "m1"})
    assert (got["h002"].state, got["h002"].attempts, got["h002"].params, got["h002"].error) == (
        "pending",
        0,
        {"n": "new"},
        None,
    )


def test_prune_removes_only_final_items(journal: Journal) -> None:
    journal.add([_entry(1), _entry(2)])
    journal.record([Outcome("h001", "direct", 1, result={"id": "d1"})])
    assert journal.prune(older_than_s=-1) == 1
    assert sorted(journal.get_many(["h001", "h002"])) == ["h002"]


def test_an_unreachable_arango_journal_fails_with_the_password_masked() -> None:
    from engine.store.arango_journal import open_arango_journal

    with pytest.raises(JournalError) as info:
        open_arango_journal("arangodb://root:hunter2@127.0.0.1:9/es")
    assert "hunter2" not in str(info.value) and "root:***@127.0.0.1:9/es" in str(info.value)


def test_open_journal_takes_the_store_urls_for_arangodb() -> None:
    # The same URL that names the policy store names the journal; it reaches the
    # ArangoDB backend (unreachable here), never the SQLite one, and masks the password.
    from engine.providers.anthropic.batches import open_journal

    with pytest.raises(JournalError) as info:
        open_journal("arangodb://root:hunter2@127.0.0.1:9/es")
    assert "hunter2" not in str(info.value) and "root:***@127.0.0.1:9/es" in str(info.value)
