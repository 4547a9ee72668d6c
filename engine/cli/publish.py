"""``llm-policy publish FILE``: validate a policy file (``-``: standard input) and store it
as the next version.

An invalid file is refused with the same findings ``llm-policy validate`` prints
(exit 1) and nothing is stored. Publishing the document that is already there is a
no-op (exit 0, "unchanged"). ``--dry-run`` says what a publish would do (new version,
re-activation, unchanged, conflict) and writes nothing. ``--format json`` prints
``{"store", "name", "version", "revision", "created", "active", "dry_run", "outcome"}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli._store_cmd import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    add_author,
    add_format,
    add_store,
    emit,
    fail,
    print_issues,
)
from engine.store import PolicyStore, PublishResult

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish", help="store a policy file as a new version (validated first)", description=__doc__
    )
    parser.add_argument("file", metavar="FILE", help="the policy YAML file, or - for standard input")
    add_store(parser)
    add_author(parser)
    parser.add_argument(
        "--no-activate", action="store_true", help="store the version without making it the active one"
    )
    parser.add_argument(
        "--expected-version",
        metavar="N",
        type=int,
        default=None,
        help="refuse (exit 3) unless the latest stored version is N (0: the policy must be new)",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would happen; write nothing")
    add_format(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.cli._source import read_policy
    from engine.cli._store_cmd import run_with_store

    if Path(args.file).is_dir():
        return fail("publish", f"{args.file} is a directory: publish takes one policy file", EXIT_USAGE, args)
    report = read_policy(args.file)
    print_issues(report.errors, report.warnings, sys.stderr if args.format == "json" else None)
    if report.policy is None:
        return fail("publish", f"refused: {args.file} is invalid; nothing was stored", EXIT_INVALID, args)
    policy = report.policy

    def work(store: PolicyStore) -> int:
        before = store.active_revision(policy.name)
        result = store.publish(
            policy.document,
            author=args.author,
            comment=args.comment,
            activate=not args.no_activate,
            expected_version=args.expected_version,
            dry_run=args.dry_run,
        )
        reactivated = result.active and before != (result.version, result.revision)
        outcome = _outcome(result, reactivated=reactivated)
        data = {
            "name": result.name,
            "version": result.version,
            "revision": result.revision,
            "created": result.created,
            "active": result.active,
            "dry_run": args.dry_run,
            "outcome": outcome,
        }
        emit(args, store, data, _describe(result, store.url, outcome, dry_run=args.dry_run))
        return EXIT_OK

    return run_with_store(args, work)


def _outcome(result: PublishResult, *, reactivated: bool) -> str:
    if result.created:
        return "published"
    return "reactivated" if reactivated else "unchanged"


def _describe(result: PublishResult, url: str, outcome: str, *, dry_run: bool) -> str:
    state = "active" if result.active else "not active"
    where = f"{result.name} version {result.version} (revision {result.revision[:12]})"
    if dry_run:
        verb = {"published": "would publish", "reactivated": "would re-activate", "unchanged": "unchanged:"}
        return f"dry run, nothing written: {verb[outcome]} {where}, {state}, in {url}"
    if outcome == "published":
        return f"published {where}, {state}, to {url}"
    if outcome == "reactivated":
        return f"re-activated {where}: it already held this document"
    if result.active:
        return f"unchanged: {where} already holds this document and is active"
    return f"unchanged: {where} already holds this document ({state})"
