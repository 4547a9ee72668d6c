"""The ``llm-policy`` command line.

Each command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` (a function
of the parsed arguments returning the exit code). Handlers import what they need
when they run, so ``llm-policy --help`` stays fast.

Exit codes shared by every command (docs/cli.md): 0 done, 1 invalid input or a refused
change, 2 usage error, 3 conflict, 4 the policy store is unreachable or does not exist.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: Command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "validate",
    "explain",
    "schema",
    "publish",
    "show",
    "history",
    "diff",
    "rollback",
    "disable",
    "enable",
    "list",
    "migrate",
    "emulator",
    "demo",
    "bench",
    "plan",
    "recommend",
    "report",
    "callsites",
    "doctor",
)

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_CONFLICT, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"llm-policy {version('llm-policy')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "llm-policy (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-policy",
        description="Decide, per LLM call site, when Claude calls use prompt caching and batches.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = handler(args)
    except BrokenPipeError:
        # The reader went away (``llm-policy explain ... | head``): stop quietly, and
        # keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
