"""The store contract: every backend must pass every test here (see conftest.store_url)."""

from __future__ import annotations

import threading

import pytest

from engine.policy import load_policy_text
from engine.providers.anthropic.tokens import canonical_json
from engine.store import (
    ConflictError,
    InvalidPolicyError,
    NotFoundError,
    PolicyStore,
    StoredVersion,
    diff_versions,
)

from .helpers import assert_invariants, policy_doc


def test_first_publish_is_version_1_active_with_the_policy_revision(store: PolicyStore) -> None:
    doc = policy_doc()
    result = store.publish(doc, author="ana", comment="first")
    expected = load_policy_text(canonical_json(doc), source="x").revision
    assert (result.name, result.version, result.revision, result.created, result.active) == (
        "demo",
        1,
        expected,
        True,
        True,
    )
    got = store.get("demo")
    assert (got.version, got.revision, got.author, got.comment, got.active) == (
        1,
        expected,
        "ana",
        "first",
        True,
    )
    assert got.document == doc
    assert got.created_at.endswith("Z") and "T" in got.created_at
    assert store.active_revision("demo") == (1, expected)
    assert store.names() == ["demo"]


def test_publishing_an_identical_document_is_a_no_op(store: PolicyStore) -> None:
    first = store.publish(policy_doc(), author="ana")
    again = store.publish(policy_doc(), author="bob", comment="same again")
    assert (again.version, again.revision, again.created, again.active) == (1, first.revision, False, True)
    history = store.history("demo")
    assert len(history.versions) == 1 and len(history.events) == 1


def test_a_new_document_becomes_the_next_active_version(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=10), author="ana")
    result = store.publish(policy_doc(rollout=20), author="bob", comment="more")
    assert (result.version, result.created, result.active) == (2, True, True)
    assert store.get("demo").document["spec"]["rollout"] == 20
    assert store.get("demo", 1).active is False
    assert_invariants(store, "demo")


def test_no_activate_stores_without_switching_and_republishing_activates(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=10), author="ana")
    staged = store.publish(policy_doc(rollout=20), author="ana", activate=False)
    assert (staged.version, staged.created, staged.active) == (2, True, False)
    assert store.get("demo").version == 1
    assert store.get("demo", 2).document["spec"]["rollout"] == 20
    idle = store.publish(policy_doc(rollout=20), author="ana", activate=False)
    assert (idle.version, idle.created, idle.active) == (2, False, False)
    live = store.publish(policy_doc(rollout=20), author="bob")
    assert (live.version, live.created, live.active) == (2, False, True)
    assert [e.event for e in store.history("demo").events] == ["published", "published", "activated"]
    assert_invariants(store, "demo")


def test_the_first_version_is_active_even_without_activate(store: PolicyStore) -> None:
    result = store.publish(policy_doc(), author="ana", activate=False)
    assert result.active is True
    assert_invariants(store, "demo")


def test_an_invalid_policy_is_never_stored_and_the_active_version_is_untouched(store: PolicyStore) -> None:
    good = store.publish(policy_doc(), author="ana")
    bad = policy_doc(rollout=1000)
    bad["spec"]["callsite"] = "x"
    with pytest.raises(InvalidPolicyError) as info:
        store.publish(bad, author="mallory")
    codes = sorted(issue.code for issue in info.value.errors)
    assert codes == ["schema.range", "schema.unknown-key"]
    assert all(issue.format().startswith("<document>:") for issue in info.value.errors)
    assert store.active_revision("demo") == (1, good.revision)
    assert len(store.history("demo").versions) == 1


@pytest.mark.parametrize("doc", [["not", "a", "mapping"], {"apiVersion": "llm-policy/v1", "spec": {1, 2}}])
def test_non_json_documents_are_refused(store: PolicyStore, doc: object) -> None:
    with pytest.raises(InvalidPolicyError):
        store.publish(doc, author="ana")  # type: ignore[arg-type]
    assert store.names() == []


def test_a_stale_expected_version_is_a_conflict_naming_the_current_version(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=1), author="ana", expected_version=0)
    store.publish(policy_doc(rollout=2), author="ana", expected_version=1)
    with pytest.raises(ConflictError) as info:
        store.publish(policy_doc(rollout=3), author="bob", expected_version=1)
    assert (info.value.version, info.value.expected) == (2, 1)
    assert "version 2" in str(info.value)
    with pytest.raises(ConflictError):
        store.publish(policy_doc(rollout=4), author="bob", expected_version=0)
    assert len(store.history("demo").versions) == 2


def test_rollback_reactivates_and_is_recorded(store: PolicyStore) -> None:
    for rollout in (10, 20, 30):
        store.publish(policy_doc(rollout=rollout), author="ana")
    back = store.rollback("demo", 1, author="oncall", comment="bad deploy")
    assert (back.version, back.active, back.document["spec"]["rollout"]) == (1, True, 10)
    assert store.get("demo").version == 1
    event = store.history("demo").events[-1]
    assert (event.event, event.version, event.from_version, event.to_version) == ("rolled_back", 1, 3, 1)
    assert (event.author, event.comment) == ("oncall", "bad deploy")
    forward = store.rollback("demo", 3, author="oncall")
    assert forward.version == 3 and store.history("demo").events[-1].event == "activated"
    assert_invariants(store, "demo")


def test_rollback_to_the_active_version_changes_nothing(store: PolicyStore) -> None:
    store.publish(policy_doc(), author="ana")
    assert store.rollback("demo", 1, author="ana").version == 1
    assert len(store.history("demo").events) == 1


def test_rollback_to_a_missing_version_or_policy_is_not_found(store: PolicyStore) -> None:
    store.publish(policy_doc(), author="ana")
    with pytest.raises(NotFoundError, match=r"version 7 of policy 'demo'.*1\.\.1"):
        store.rollback("demo", 7, author="ana")
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.rollback("ghost", 1, author="ana")


def test_disable_publishes_an_enabled_false_copy_once(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=40), author="ana")
    off = store.disable("demo", author="oncall")
    assert (off.version, off.created, off.active) == (2, True, True)
    doc = store.get("demo").document
    assert doc["spec"]["enabled"] is False and doc["spec"]["rollout"] == 40
    again = store.disable("demo", author="oncall")
    assert (again.version, again.created) == (2, False)
    event = store.history("demo").events[-1]
    assert (event.event, event.from_version, event.to_version, event.author) == ("disabled", 1, 2, "oncall")
    with pytest.raises(NotFoundError):
        store.disable("ghost", author="oncall")
    assert_invariants(store, "demo")


def test_reads_of_unknown_names_and_versions_are_not_found(store: PolicyStore) -> None:
    assert store.active_revision("ghost") is None
    with pytest.raises(NotFoundError):
        store.get("ghost")
    with pytest.raises(NotFoundError):
        store.history("ghost")
    store.publish(policy_doc(), author="ana")
    with pytest.raises(NotFoundError, match="version 2"):
        store.get("demo", 2)


def test_history_lists_versions_ascending_and_every_event_in_order(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=1), author="a", comment="one")
    store.publish(policy_doc(rollout=2), author="b", comment="two", activate=False)
    store.rollback("demo", 2, author="c")
    store.disable("demo", author="d")
    history = store.history("demo")
    assert [v.version for v in history.versions] == [1, 2, 3]
    assert [(e.event, e.version, e.from_version, e.to_version, e.author) for e in history.events] == [
        ("published", 1, None, 1, "a"),
        ("published", 2, 1, 1, "b"),
        ("activated", 2, 1, 2, "c"),
        ("disabled", 3, 2, 3, "d"),
    ]
    data = history.as_json()
    assert list(data["versions"][0]) == ["version", "revision", "author", "comment", "created_at", "active"]
    assert set(data["events"][0]) >= {"event", "version", "author", "at", "comment"}


def test_diff_is_a_unified_diff_of_the_yaml(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=10), author="ana")
    store.publish(policy_doc(rollout=20), author="ana")
    text = diff_versions(store, "demo", 1, 2)
    assert text.startswith("--- demo v1 (")
    assert "-  rollout: 10\n" in text and "+  rollout: 20\n" in text
    assert diff_versions(store, "demo", 2, 2) == ""


def test_an_author_is_required(store: PolicyStore) -> None:
    with pytest.raises(ValueError, match="author"):
        store.publish(policy_doc(), author=" ")


def test_applied_migrations_are_recorded_once(store: PolicyStore) -> None:
    assert store.applied_migrations() == {}
    assert store.record_migration("0001", "seed") is True
    assert store.record_migration("0001", "seed") is False
    assert list(store.applied_migrations()) == ["0001"]


def test_watch_reports_a_newly_activated_version(store: PolicyStore) -> None:
    first = store.publish(policy_doc(rollout=10), author="ana")
    seen: list[StoredVersion] = []
    arrived = threading.Event()

    def on_change(version: StoredVersion) -> None:
        seen.append(version)
        arrived.set()

    watch = store.watch("demo", on_change, interval=0.02, known=(first.version, first.revision))
    try:
        store.publish(policy_doc(rollout=20), author="bob")
        assert arrived.wait(10), "the watcher never reported version 2"
    finally:
        watch.stop()
    assert [v.version for v in seen] == [2]
    assert seen[0].document["spec"]["rollout"] == 20


def test_a_policy_without_enabled_is_already_disabled(store: PolicyStore) -> None:
    doc = policy_doc()
    del doc["spec"]["enabled"]  # the language's default is false
    store.publish(doc, author="ana")
    assert store.disable("demo", author="oncall").created is False
    assert len(store.history("demo").versions) == 1


def test_enable_publishes_an_enabled_true_copy_once(store: PolicyStore) -> None:
    store.publish(policy_doc(rollout=40), author="ana")
    store.disable("demo", author="oncall")
    on = store.enable("demo", author="oncall", comment="incident over")
    assert (on.version, on.created, on.active) == (3, True, True)
    assert store.get("demo").document["spec"] == {**policy_doc(rollout=40)["spec"], "enabled": True}
    assert store.enable("demo", author="oncall").created is False
    event = store.history("demo").events[-1]
    assert (event.event, event.from_version, event.to_version, event.comment) == (
        "enabled",
        2,
        3,
        "incident over",
    )
    with pytest.raises(NotFoundError):
        store.enable("ghost", author="oncall")
    assert_invariants(store, "demo")


def test_a_dry_run_publish_decides_like_a_publish_and_writes_nothing(store: PolicyStore) -> None:
    first = store.publish(policy_doc(rollout=10), author="ana", dry_run=True)
    assert (first.version, first.created, first.active) == (1, True, True)
    assert store.names() == []
    store.publish(policy_doc(rollout=10), author="ana")
    again = store.publish(policy_doc(rollout=10), author="ana", dry_run=True)
    assert (again.version, again.created) == (1, False)
    staged = store.publish(policy_doc(rollout=20), author="ana", activate=False, dry_run=True)
    assert (staged.version, staged.created, staged.active) == (2, True, False)
    with pytest.raises(ConflictError):
        store.publish(policy_doc(rollout=20), author="ana", expected_version=0, dry_run=True)
    history = store.history("demo")
    assert len(history.versions) == 1 and len(history.events) == 1
