"""``migrate``: 0001 seeds pipeshub-default disabled, exactly once, and never overwrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine._resources import resource_path
from engine.policy import load_policy
from engine.store import PolicyStore
from engine.store.migrations import MigrationError, discover, run_migrations

from .helpers import assert_invariants, policy_doc

SEED = load_policy(resource_path("policies/pipeshub-default.yaml"))


def test_the_shipped_migrations_start_with_0001() -> None:
    assert [m.id for m in discover()][:1] == ["0001"]


def test_migrate_twice_seeds_one_disabled_version(store: PolicyStore) -> None:
    first = run_migrations(store)
    second = run_migrations(store)
    assert [(o.id, o.status) for o in first] == [("0001", "applied")]
    assert [(o.id, o.status) for o in second] == [("0001", "already-applied")]
    history = store.history("pipeshub-default")
    assert len(history.versions) == 1
    seeded = store.get("pipeshub-default")
    assert seeded.document["spec"]["enabled"] is False
    assert seeded.revision == SEED.revision
    assert list(store.applied_migrations()) == ["0001"]


def test_0001_is_idempotent_even_if_its_record_were_lost(store: PolicyStore) -> None:
    (migration,) = [m for m in discover() if m.id == "0001"]
    migration.apply(store, dry_run=False)
    actions = migration.apply(store, dry_run=False)
    assert "left as is" in actions[-1]
    assert len(store.history("pipeshub-default").versions) == 1


def test_migrate_never_overwrites_a_policy_an_admin_published(store: PolicyStore) -> None:
    mine = store.publish(policy_doc("pipeshub-default", rollout=25), author="admin")
    (outcome,) = run_migrations(store)
    assert outcome.status == "applied" and "left as is" in outcome.actions[-1]
    assert store.active_revision("pipeshub-default") == (1, mine.revision)
    assert len(store.history("pipeshub-default").versions) == 1
    assert_invariants(store, "pipeshub-default")


def test_dry_run_writes_nothing(store: PolicyStore) -> None:
    (outcome,) = run_migrations(store, dry_run=True)
    assert outcome.status == "pending"
    assert outcome.actions[-1] == "seed pipeshub-default version 1, disabled"
    assert store.applied_migrations() == {} and store.names() == []


def _write(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(body, encoding="utf-8")


def test_migrations_run_in_number_order_and_are_recorded(store: PolicyStore, tmp_path: Path) -> None:
    body = "DESCRIPTION = {d!r}\ndef apply(store, *, dry_run):\n    return [{d!r}]\n"
    _write(tmp_path, "0002_second.py", body.format(d="second"))
    _write(tmp_path, "0001_first.py", body.format(d="first"))
    outcomes = run_migrations(store, migrations=discover(tmp_path))
    assert [(o.id, o.actions) for o in outcomes] == [("0001", ["first"]), ("0002", ["second"])]
    assert list(store.applied_migrations()) == ["0001", "0002"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.py", "0001_b.py"], "already used"),
        (["001_short.py"], "NNNN_what_it_does"),
        (["0003_no_apply.py"], "defines DESCRIPTION"),
    ],
)
def test_malformed_migrations_are_refused_by_name(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        body = (
            "" if "no_apply" in name else "DESCRIPTION = 'x'\ndef apply(store, *, dry_run):\n    return []\n"
        )
        _write(tmp_path, name, body)
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)
