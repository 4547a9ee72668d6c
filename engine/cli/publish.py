"""``llm-policy publish FILE``: validate a policy file and store it as the next version.

An invalid file is refused with the same findings ``llm-policy validate`` prints
(exit 1) and nothing is stored. Publishing the document that is already there is a
no-op (exit 0, "unchanged").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli._store_cmd import EXIT_INVALID, EXIT_OK, EXIT_USAGE, add_author, add_store, fail, print_issues
from engine.store import PolicyStore, PublishResult

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish", help="store a policy file as a new version (validated first)", description=__doc__
    )
    parser.add_argument("file", metavar="FILE", help="the policy YAML file")
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import run_with_store
    from engine.policy import check_paths

    path = Path(args.file)
    if path.is_dir():
        return fail("publish", f"{path} is a directory: publish takes one policy file", EXIT_USAGE)
    (report,) = check_paths([path])
    print_issues(report.errors, report.warnings)
    if report.policy is None:
        return fail("publish", f"refused: {path} is invalid; nothing was stored", EXIT_INVALID)
    document = report.policy.document

    def work(store: PolicyStore) -> int:
        before = store.active_revision(report.policy.name if report.policy else "")
        result = store.publish(
            document,
            author=args.author,
            comment=args.comment,
            activate=not args.no_activate,
            expected_version=args.expected_version,
        )
        print(
            _describe(
                result, store.url, reactivated=result.active and before != (result.version, result.revision)
            )
        )
        return EXIT_OK

    return run_with_store(args, work)


def _describe(result: PublishResult, url: str, *, reactivated: bool) -> str:
    state = "active" if result.active else "not active"
    where = f"{result.name} version {result.version} (revision {result.revision[:12]})"
    if result.created:
        return f"published {where}, {state}, to {url}"
    if reactivated:
        return f"re-activated {where}: it already held this document"
    if result.active:
        return f"unchanged: {where} already holds this document and is active"
    return f"unchanged: {where} already holds this document ({state})"
