"""``llm-policy show NAME [--version N]``: a stored version as YAML (the active one by default).

The output is a policy file: edit it and ``llm-policy publish`` it. A comment line on
top says which version it is, who published it and when. ``--format json`` prints
``{"store", "name", "version", "revision", "active", "author", "comment", "created_at",
"document"}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_format, add_store, emit
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "show", help="print a stored policy version as YAML", description=__doc__
    )
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    parser.add_argument(
        "--version", metavar="N", type=int, default=None, help="which version (default: the active)"
    )
    add_store(parser)
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store
    from engine.store import document_yaml

    def work(store: PolicyStore) -> int:
        v = store.get(args.name, args.version)
        state = "active" if v.active else "not active"
        text = (
            f"# {v.name} version {v.version} ({state}), revision {v.revision}\n"
            f"# published by {v.author} at {v.created_at}\n" + document_yaml(v.document).rstrip("\n")
        )
        emit(args, store, {"name": v.name, **v.as_json(), "document": v.document}, text)
        return EXIT_OK

    return run_with_store(args, work)
