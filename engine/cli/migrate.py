"""``llm-policy migrate``: apply the store migrations that have not run yet (``migrations/``).

``0001`` creates what the store needs and seeds ``pipeshub-default``, disabled, unless
that policy already exists. Running it again changes nothing. ``--dry-run`` says what
would happen and writes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_store
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="create the store's schema and seed the disabled defaults", description=__doc__
    )
    add_store(parser)
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store
    from engine.store.migrations import run_migrations

    def work(store: PolicyStore) -> int:
        outcomes = run_migrations(store, dry_run=args.dry_run)
        print(f"store {store.url}" + (" (dry run: nothing written)" if args.dry_run else ""))
        for outcome in outcomes:
            status = {"applied": "applied", "already-applied": "already applied", "pending": "would apply"}
            print(f"  {outcome.id} {status[outcome.status]}: {outcome.description}")
            for action in outcome.actions:
                print(f"       - {action}")
        return EXIT_OK

    return run_with_store(args, work)
