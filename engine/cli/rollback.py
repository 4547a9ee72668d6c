"""``llm-policy rollback NAME VERSION``: make an earlier stored version the active one again.

Nothing is deleted: the history records the switch (who, when, from which version).
The command reads back and prints the version now active; it exits 1 (after the
change) when NAME is not the policy the engine loads (``$LLM_POLICY_NAME``, default
``pipeshub-default``), 4 when the store is unreachable. A version whose stored document
was edited by hand is refused (it no longer matches its revision). ``--format json``:
the same object as ``disable``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import add_author, add_format, add_store
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
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import report_switch, run_with_store

    def work(store: PolicyStore) -> int:
        before = store.active_revision(args.name)
        v = store.rollback(args.name, args.version, author=args.author, comment=args.comment)
        changed = before is None or before[0] != v.version
        said = (
            f"{v.name}: version {v.version} (revision {v.revision[:12]}) is active (was version {before[0]})"
            if changed and before is not None
            else f"unchanged: {v.name} version {v.version} is already active"
        )
        return report_switch(args, store, args.name, changed, said)

    return run_with_store(args, work)
