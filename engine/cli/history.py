"""``llm-policy history NAME``: every stored version and every change of the active one.

``--format json`` prints ``{"store", "name", "versions": [{"version", "revision", "author", "comment",
"created_at", "active"}], "events": [{"event", "version", "author", "at", "comment",
"from", "to"}]}``, versions ascending, events in the order they happened.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_format, add_store, emit
from engine.store import History, PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "history", help="versions and activation events of a policy", description=__doc__
    )
    parser.add_argument("name", metavar="NAME", help="the policy's metadata.name")
    add_store(parser)
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store

    def work(store: PolicyStore) -> int:
        history = store.history(args.name)
        emit(args, store, history.as_json(), _text(history))
        return EXIT_OK

    return run_with_store(args, work)


def _text(history: History) -> str:
    from engine.cli._store_cmd import safe

    active = next((v.version for v in history.versions if v.active), None)
    lines = [f"{history.name}: {len(history.versions)} version(s), version {active} active", ""]
    lines.append(f"  {'version':>7}  {'':1}  {'created_at':<24}  {'revision':<12}  {'author':<16}  comment")
    for v in history.versions:
        mark = "*" if v.active else " "
        row = f"  {v.version:>7}  {mark}  {v.created_at:<24}  {v.revision[:12]:<12}  {safe(v.author):<16}"
        lines.append(f"{row}  {safe(v.comment)}")
    lines += ["", "  events:"]
    for e in history.events:
        move = f"{e.from_version or '-'} -> {e.to_version}" if e.from_version != e.to_version else "no switch"
        note = f"  {safe(e.comment)}" if e.comment else ""
        lines.append(f"  {e.at:<24}  {e.event:<11}  v{e.version:<5}  {move:<12}  {safe(e.author)}{note}")
    return "\n".join(lines)
