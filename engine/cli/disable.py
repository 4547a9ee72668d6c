"""``llm-policy disable NAME``: the kill switch. Publishes and activates a copy of the
active version with ``spec.enabled: false``; every call then goes through untouched.

Already disabled: nothing changes. Either way the command reads back and prints the
version now active. Exit 1 (after the change) when NAME is not the policy the engine
loads (``$LLM_POLICY_NAME``, default ``pipeshub-default``): the engine would not see
it. Exit 4 when the store is unreachable or does not exist. Undo with ``llm-policy
enable`` or ``rollback``. ``--format json`` prints ``{"store", "name", "changed",
"active": {"version", "revision", "enabled"}, "engine_policy", "engine_loads_it"}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import add_author, add_format, add_store
from engine.store import PolicyStore

__all__ = ["register", "register_switch"]


def register_switch(subparsers: Any, command: str, help_text: str, doc: str | None) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(command, help=help_text, description=doc)
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    add_store(parser)
    add_author(parser)
    add_format(parser)
    parser.set_defaults(handler=run, enabled=command == "enable")


def register(subparsers: Any) -> None:
    register_switch(
        subparsers, "disable", "switch a policy off (publishes a copy with enabled: false)", __doc__
    )


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import report_switch, run_with_store

    def work(store: PolicyStore) -> int:
        switch = store.enable if args.enabled else store.disable
        before = store.active_revision(args.name)
        result = switch(args.name, author=args.author, comment=args.comment)
        word = "enabled" if args.enabled else "disabled"
        changed = before != (result.version, result.revision)
        said = (
            f"{word} {result.name}: version {result.version} is now active"
            if changed
            else f"unchanged: {result.name} is already {word} (version {result.version} is active)"
        )
        return report_switch(args, store, args.name, changed, said)

    return run_with_store(args, work)
