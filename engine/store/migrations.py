"""The migration runner behind ``llm-policy migrate``.

Migrations are files ``migrations/NNNN_what_it_does.py`` (shipped in the wheel under
``engine/_bundled/migrations``), applied in number order. Each defines::

    DESCRIPTION = "one line"
    def apply(store: PolicyStore, *, dry_run: bool) -> list[str]   # what it did / would do

Applied ones are recorded in the store itself (so every process that shares the
store agrees) and never run again. A migration must also be safe to run twice on its
own, because two ``migrate`` commands may start at the same moment.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from engine._resources import resource_path
from engine.store._model import PolicyStore

__all__ = ["Migration", "MigrationError", "MigrationOutcome", "discover", "run_migrations"]

_FILE = re.compile(r"^(?P<id>\d{4})_(?P<slug>[a-z0-9_]+)\.py$")
Apply = Callable[..., list[str]]


class MigrationError(Exception):
    """A migration file is malformed (bad name, duplicate number, missing ``apply``)."""


@dataclass(frozen=True)
class Migration:
    id: str
    path: Path
    description: str
    apply: Apply


@dataclass(frozen=True)
class MigrationOutcome:
    id: str
    description: str
    status: Literal["applied", "already-applied", "pending"]
    actions: list[str]


def discover(directory: Path | None = None) -> list[Migration]:
    """Every migration in ``directory`` (default: the shipped ones), in number order."""
    directory = directory or resource_path("migrations")
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("[0-9]*.py")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: a migration file is named NNNN_what_it_does.py")
        if match["id"] in found:
            raise MigrationError(
                f"{path}: number {match['id']} is already used by {found[match['id']].path.name}"
            )
        found[match["id"]] = _load(match["id"], path)
    return [found[key] for key in sorted(found)]


def _load(migration_id: str, path: Path) -> Migration:
    spec = importlib.util.spec_from_file_location(f"llm_policy_migration_{migration_id}", path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    apply = getattr(module, "apply", None)
    description = getattr(module, "DESCRIPTION", None)
    if not callable(apply) or not isinstance(description, str):
        raise MigrationError(f"{path}: a migration defines DESCRIPTION (str) and apply(store, *, dry_run)")
    return Migration(migration_id, path, description, cast(Apply, apply))


def run_migrations(
    store: PolicyStore, *, dry_run: bool = False, migrations: list[Migration] | None = None
) -> list[MigrationOutcome]:
    """Apply every migration the store has not recorded yet (with ``dry_run``, only say what
    would happen). Stops at the first failure, which propagates; earlier ones stay recorded."""
    applied = store.applied_migrations()
    outcomes: list[MigrationOutcome] = []
    for migration in discover() if migrations is None else migrations:
        if migration.id in applied:
            outcomes.append(MigrationOutcome(migration.id, migration.description, "already-applied", []))
            continue
        actions = migration.apply(store, dry_run=dry_run)
        if not dry_run:
            store.record_migration(migration.id, migration.description)
        status: Literal["applied", "pending"] = "pending" if dry_run else "applied"
        outcomes.append(MigrationOutcome(migration.id, migration.description, status, actions))
    return outcomes
