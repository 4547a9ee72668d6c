"""What the store commands (publish, show, history, diff, rollback, disable, migrate) share:
the ``--store`` / ``--author`` options and one mapping from store errors to exit codes.

Exit codes: 0 done, 1 invalid input or a refused change, 2 usage (a bad store URL),
3 conflict (someone else changed the policy first). Every message names the store by
its masked URL, so a password never reaches a terminal or a CI log.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from engine.store import (
    DEFAULT_STORE_URL,
    ConflictError,
    InvalidPolicyError,
    PolicyStore,
    StoreError,
    StoreURLError,
    open_store,
)

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_author",
    "add_store",
    "print_issues",
    "run_with_store",
]

from engine.cli import EXIT_CONFLICT, EXIT_INVALID, EXIT_OK, EXIT_USAGE


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="sqlite:///path.db or arangodb://user:pass@host:8529/db "
        f"(default: $LLM_POLICY_STORE, else {DEFAULT_STORE_URL})",
    )


def add_author(parser: argparse.ArgumentParser, *, comment: bool = True) -> None:
    parser.add_argument(
        "--author", metavar="NAME", required=True, help="who makes the change (kept in the history)"
    )
    if comment:
        parser.add_argument("--comment", metavar="TEXT", default="", help="why (kept in the history)")


def print_issues(errors: Sequence[Any], warnings: Sequence[Any], out: TextIO | None = None) -> None:
    """Validation findings exactly as ``llm-policy validate`` prints them (stdout, errors
    first, each ``Issue.format()``: ``file:line:column: code: message``)."""
    out = out or sys.stdout
    for issue in [*errors, *warnings]:
        print(issue.format(), file=out)


def fail(command: str, message: str, code: int) -> int:
    print(f"llm-policy {command}: {message}", file=sys.stderr)
    return code


def run_with_store(args: argparse.Namespace, work: Callable[[PolicyStore], int]) -> int:
    """Open the store ``args.store`` names, run ``work`` on it, map store errors to exit codes."""
    command = str(args.command)
    try:
        store = open_store(args.store)
    except StoreURLError as exc:
        return fail(command, str(exc), EXIT_USAGE)
    except StoreError as exc:
        return fail(command, str(exc), EXIT_INVALID)
    try:
        return work(store)
    except BrokenPipeError:  # `llm-policy history NAME | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except ConflictError as exc:
        return fail(command, f"conflict: {exc}", EXIT_CONFLICT)
    except InvalidPolicyError as exc:
        print_issues(exc.errors, exc.warnings)
        return fail(command, "refused: the policy is invalid; nothing was stored", EXIT_INVALID)
    except StoreError as exc:
        return fail(command, str(exc), EXIT_INVALID)
    finally:
        store.close()
