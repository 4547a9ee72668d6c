"""``llm-policy diff``: what changed, as a unified diff of YAML.

- ``diff NAME V1 V2``: from stored version V1 to stored version V2.
- ``diff FILE`` (``-``: standard input): from the active version of the file's policy to
  the file, i.e. what ``publish FILE`` would change.

Prints nothing on stdout when the two hold the same document (a note on stderr).
``--format json`` prints ``{"store", "name", "from", "to", "changed", "diff"}``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from engine.cli._store_cmd import EXIT_INVALID, EXIT_OK, EXIT_USAGE, add_format, add_store, emit, fail
from engine.store import PolicyStore

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="unified diff between two stored versions, or a file and the active version",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "what", nargs="+", metavar="NAME V1 V2 | FILE", help="two stored versions, or a policy file"
    )
    add_store(parser)
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store

    if len(args.what) == 3:
        name, old, new = args.what
        if not (old.isdigit() and new.isdigit()):
            return fail("diff", f"versions are numbers, got {old!r} and {new!r}", EXIT_USAGE, args)
        return run_with_store(args, lambda store: _versions(args, store, name, int(old), int(new)))
    if len(args.what) != 1:
        return fail("diff", "give NAME V1 V2 (two stored versions) or FILE (against the active)", EXIT_USAGE)
    return _file(args)


def _answer(args: argparse.Namespace, store: PolicyStore, name: str, frm: str, to: str, text: str) -> int:
    emit(args, store, {"name": name, "from": frm, "to": to, "changed": bool(text), "diff": text}, "")
    if args.format != "json":
        if text:
            sys.stdout.write(text)
        else:
            print(f"{name}: {frm} and {to} hold the same document", file=sys.stderr)
    return EXIT_OK


def _versions(args: argparse.Namespace, store: PolicyStore, name: str, old: int, new: int) -> int:
    from engine.store import diff_versions

    return _answer(args, store, name, f"v{old}", f"v{new}", diff_versions(store, name, old, new))


def _file(args: argparse.Namespace) -> int:
    from engine.cli._source import read_policy
    from engine.cli._store_cmd import print_issues, run_with_store
    from engine.store import document_yaml

    (path,) = args.what
    report = read_policy(path)
    if report.policy is None:
        print_issues(report.errors, report.warnings, sys.stderr)
        return fail("diff", f"{path} is invalid", EXIT_INVALID, args)
    policy = report.policy

    def work(store: PolicyStore) -> int:
        active = store.get(policy.name)
        lines = difflib.unified_diff(
            document_yaml(active.document).splitlines(keepends=True),
            document_yaml(policy.document).splitlines(keepends=True),
            fromfile=f"{policy.name} v{active.version} active ({active.revision[:12]})",
            tofile=f"{path} ({policy.revision[:12]})",
        )
        return _answer(args, store, policy.name, f"v{active.version}", path, "".join(lines))

    return run_with_store(args, work)
