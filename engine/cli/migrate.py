"""``llm-policy migrate``: create the store if needed and apply the store migrations that
have not run yet (``migrations/``). The only command that creates a store.

``0001`` creates what the store needs and seeds ``pipeshub-default``, disabled, unless
that policy already exists. Running it again changes nothing. ``--dry-run`` says what
would happen and writes nothing (not even a new, empty store). ``--format json`` prints
``{"store", "dry_run", "created", "migrations": [{"id", "status", "description", "actions"}]}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_format, add_store, emit
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="create the store's schema and seed the disabled defaults", description=__doc__
    )
    add_store(parser)
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store, store_label
    from engine.store import StoreMissingError, open_store
    from engine.store.migrations import discover, run_migrations

    if args.dry_run:
        try:
            open_store(args.store, create=False).close()
        except StoreMissingError as exc:
            return _would_create(args, str(exc), discover())
        except Exception:
            pass

    def work(store: PolicyStore) -> int:
        outcomes = run_migrations(store, dry_run=args.dry_run)
        status = {"applied": "applied", "already-applied": "already applied", "pending": "would apply"}
        lines = [f"store {store_label(store)}" + (" (dry run: nothing written)" if args.dry_run else "")]
        for outcome in outcomes:
            lines.append(f"  {outcome.id} {status[outcome.status]}: {outcome.description}")
            lines += [f"       - {action}" for action in outcome.actions]
        data = {
            "dry_run": args.dry_run,
            "created": False,
            "migrations": [
                {"id": o.id, "status": o.status, "description": o.description, "actions": o.actions}
                for o in outcomes
            ],
        }
        emit(args, store, data, "\n".join(lines))
        return EXIT_OK

    return run_with_store(args, work, create=not args.dry_run)


def _would_create(args: argparse.Namespace, why: str, migrations: list[Any]) -> int:
    import json

    from engine.store import mask_url, resolve_store_url

    if args.format == "json":
        body = {
            "store": mask_url(resolve_store_url(args.store)),
            "dry_run": True,
            "created": True,
            "migrations": [
                {"id": m.id, "status": "pending", "description": m.description, "actions": []}
                for m in migrations
            ],
        }
        print(json.dumps(body, indent=2))
    else:
        print(f"dry run, nothing written: {why}; migrate would create it, then apply:")
        for m in migrations:
            print(f"  {m.id} would apply: {m.description}")
    return EXIT_OK
