"""``llm-policy list``: every policy in the store, its active version and whether it is on.

The policy the engine loads (``$LLM_POLICY_NAME``, default ``pipeshub-default``) is
marked ``*``. A read: it never creates a store. ``--format json`` prints ``{"store",
"engine_policy", "policies": [{"name", "version", "revision", "enabled", "author",
"created_at", "engine_loads_it"}]}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli._store_cmd import EXIT_OK, add_format, add_store, emit
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "list", help="the policies in the store and their active versions", description=__doc__
    )
    add_store(parser)
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import engine_policy_name, run_with_store

    def work(store: PolicyStore) -> int:
        loads = engine_policy_name()
        rows = []
        for name in store.names():
            v = store.get(name)
            spec = v.document.get("spec")
            enabled = bool(isinstance(spec, dict) and spec.get("enabled", False))
            rows.append(
                {
                    "name": name,
                    "version": v.version,
                    "revision": v.revision,
                    "enabled": enabled,
                    "author": v.author,
                    "created_at": v.created_at,
                    "engine_loads_it": name == loads,
                }
            )
        lines = [f"  {'':1} {'name':<32} {'version':>7}  {'enabled':<7}  {'created_at':<24}  author"]
        for r in rows:
            mark = "*" if r["engine_loads_it"] else " "
            lines.append(
                f"  {mark} {r['name']:<32} {r['version']:>7}  {str(r['enabled']).lower():<7}  "
                f"{r['created_at']:<24}  {r['author']}"
            )
        if not rows:
            lines = ["(no policies in this store)"]
        elif not any(r["engine_loads_it"] for r in rows):
            lines.append(f"(the engine loads {loads!r}, which is not in this store)")
        emit(args, store, {"engine_policy": loads, "policies": rows}, "\n".join(lines))
        return EXIT_OK

    return run_with_store(args, work)
