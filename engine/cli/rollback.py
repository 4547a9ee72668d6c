"""``llm-policy rollback NAME VERSION``: make an earlier stored version the active one again.

Nothing is deleted: the history records the switch (who, when, from which version).
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_author, add_store
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rollback", help="re-activate an earlier version", description=__doc__
    )
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    parser.add_argument("version", metavar="VERSION", type=int, help="the version to activate")
    add_store(parser)
    add_author(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store

    def work(store: PolicyStore) -> int:
        before = store.active_revision(args.name)
        v = store.rollback(args.name, args.version, author=args.author, comment=args.comment)
        if before is not None and before[0] == v.version:
            print(f"unchanged: {v.name} version {v.version} is already active")
        else:
            was = f" (was version {before[0]})" if before else ""
            print(f"{v.name}: version {v.version} (revision {v.revision[:12]}) is active{was}")
        return EXIT_OK

    return run_with_store(args, work)
