"""``llm-policy diff NAME V1 V2``: what changed from version V1 to version V2 (unified diff of YAML).

Prints nothing when the two versions hold the same document.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_store
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff", help="unified diff between two stored versions", description=__doc__
    )
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    parser.add_argument("old", metavar="V1", type=int, help="the version to compare from")
    parser.add_argument("new", metavar="V2", type=int, help="the version to compare to")
    add_store(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store
    from engine.store import diff_versions

    def work(store: PolicyStore) -> int:
        text = diff_versions(store, args.name, args.old, args.new)
        if text:
            sys.stdout.write(text)
        else:
            print(f"{args.name}: versions {args.old} and {args.new} hold the same document", file=sys.stderr)
        return EXIT_OK

    return run_with_store(args, work)
