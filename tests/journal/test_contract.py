"""The journal protocol, on every backend: state rules, ownership, leases, creation intent."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from engine.journal import Journal, JournalEntry, JournalError, Lease, Outcome, open_journal

A = Lease("proc-a", ttl_s=60)
B = Lease("proc-b", ttl_s=60)


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


def test_items_round_trip_and_the_claimer_owns_them(journal: Journal) -> None:
    rows = journal.claim([_entry(1), _entry(2)], A)
    assert sorted(rows) == ["h001", "h002"]
    got = journal.get_many(["h001", "h002", "nope"])
    assert sorted(got) == ["h001", "h002"]
    row = got["h001"]
    assert row.params == {"model": "claude-sonnet-4-5", "n": 1}
    assert (row.state, row.call_site, row.credential, row.owner) == (
        "pending",
        "indexing.table_rows",
        "fp-1",
        "proc-a",
    )
    assert row.lease_expires > time.time() + 30
    assert row.sent_at is None


def test_a_live_owners_item_is_joined_never_taken(journal: Journal) -> None:
    journal.claim([_entry(1)], A)
    rows = journal.claim([_entry(1, params={"n": "other"})], B)
    assert rows["h001"].owner == "proc-a", "B must join, not resubmit"
    assert rows["h001"].params == {"model": "claude-sonnet-4-5", "n": 1}
    assert journal.take_over(B) == []


def test_an_expired_owners_items_are_taken_over_with_their_state(journal: Journal) -> None:
    dead = Lease("proc-dead", ttl_s=-1)  # its lease is already over
    journal.claim([_entry(1), _entry(2), _entry(3)], dead)
    journal.mark_sending(["h002"], dead)
    journal.mark_submitted(["h003"], "msgbatch_9", dead)
    rows = journal.claim([_entry(1)], A)
    assert rows["h001"].owner == "proc-a"
    taken = {e.request_hash: e for e in journal.take_over(B)}
    assert sorted(taken) == ["h002", "h003"]
    assert all(e.owner == "proc-b" for e in taken.values())
    assert taken["h002"].sent_at is not None and taken["h002"].state == "pending"
    assert (taken["h003"].state, taken["h003"].batch_id) == ("submitted", "msgbatch_9")
    assert taken["h003"].params is not None, "a taken-over item can be retried"
    assert journal.take_over(A) == [], "B's lease is live now"


def test_renew_and_release(journal: Journal) -> None:
    short = Lease("proc-a", ttl_s=-1)
    journal.claim([_entry(1), _entry(2)], short)
    assert journal.renew(A) == 2  # same owner, a live lease again
    assert journal.take_over(B) == []
    journal.release(A, ["h001"])
    assert [e.request_hash for e in journal.take_over(B)] == ["h001"]
    journal.release(A)
    assert [e.request_hash for e in journal.take_over(B)] == ["h002"]


def test_only_the_owner_marks_intent_and_submission(journal: Journal) -> None:
    journal.claim([_entry(1)], A)
    journal.mark_sending(["h001"], B)
    journal.mark_submitted(["h001"], "msgbatch_x", B)
    row = journal.get_many(["h001"])["h001"]
    assert (row.state, row.sent_at) == ("pending", None)
    journal.mark_sending(["h001"], A)
    assert journal.get_many(["h001"])["h001"].sent_at is not None
    journal.mark_submitted(["h001"], "msgbatch_1", A)
    assert journal.items_in_batch("msgbatch_1")[0].request_hash == "h001"


def test_results_and_retries_follow_the_state_rules(journal: Journal) -> None:
    journal.claim([_entry(1), _entry(2), _entry(3)], A)
    journal.mark_sending(["h001", "h002", "h003"], A)
    journal.mark_submitted(["h001", "h002", "h003"], "msgbatch_1", A)
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
    assert (got["h002"].state, got["h002"].batch_id, got["h002"].sent_at) == ("pending", None, None)
    assert got["h002"].params is not None
    assert got["h003"].state == "submitted"
    journal.record([Outcome("h001", "failed", 9, error="late")])  # a final success is never overwritten
    assert journal.get_many(["h001"])["h001"].state == "succeeded"


def test_claim_resets_failed_and_stale_answers_only(journal: Journal) -> None:
    journal.claim([_entry(1), _entry(2), _entry(3)], A)
    journal.record(
        [
            Outcome("h001", "succeeded", 1, result={"id": "m1"}),
            Outcome("h002", "failed", 3, error="x"),
            Outcome("h003", "direct", 1, result={"id": "d3"}),
        ]
    )
    rows = journal.claim([_entry(1), _entry(2, params={"n": "new"})], B, time.time() - 600)
    assert (rows["h001"].state, rows["h001"].result) == ("succeeded", {"id": "m1"}), "a redelivery"
    assert (rows["h002"].state, rows["h002"].attempts, rows["h002"].params, rows["h002"].owner) == (
        "pending",
        0,
        {"n": "new"},
        "proc-b",
    )
    rows = journal.claim([_entry(3)], B, time.time() + 1)  # answered before the window: a new request
    assert (rows["h003"].state, rows["h003"].result, rows["h003"].owner) == ("pending", None, "proc-b")


def test_prune_removes_only_final_items(journal: Journal) -> None:
    journal.claim([_entry(1), _entry(2)], A)
    journal.record([Outcome("h001", "direct", 1, result={"id": "d1"})])
    assert journal.prune(older_than_s=-1) == 1
    assert sorted(journal.get_many(["h001", "h002"])) == ["h002"]


def test_an_unreachable_arango_journal_fails_with_the_password_masked() -> None:
    from engine.journal.arango import open_arango_journal

    with pytest.raises(JournalError) as info:
        open_arango_journal("arangodb://root:hunter2@127.0.0.1:9/es")
    assert "hunter2" not in str(info.value) and "root:***@127.0.0.1:9/es" in str(info.value)


def test_open_journal_takes_the_store_urls_for_arangodb() -> None:
    # The same URL that names the policy store names the journal; it reaches the
    # ArangoDB backend (unreachable here), never the SQLite one, and masks the password.
    with pytest.raises(JournalError) as info:
        open_journal("arangodb://root:hunter2@127.0.0.1:9/es")
    assert "hunter2" not in str(info.value) and "root:***@127.0.0.1:9/es" in str(info.value)
