"""``llm-policy disable NAME``: the kill switch. Publishes and activates a copy of the
active version with ``spec.enabled: false``; every call then goes through untouched.

Already disabled: nothing changes (exit 0). Undo with ``llm-policy rollback``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_author, add_store
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "disable", help="switch a policy off (publishes a copy with enabled: false)", description=__doc__
    )
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    add_store(parser)
    add_author(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store

    def work(store: PolicyStore) -> int:
        before = store.active_revision(args.name)
        result = store.disable(args.name, author=args.author, comment=args.comment)
        if before != (result.version, result.revision):
            print(f"disabled {result.name}: version {result.version} (enabled: false) is now active")
        else:
            print(f"unchanged: {result.name} is already disabled (version {result.version} is active)")
        return EXIT_OK

    return run_with_store(args, work)
