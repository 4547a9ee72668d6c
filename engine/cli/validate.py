"""``llm-policy validate PATH...``: check policy files (or directories of them; ``-``
reads one policy from standard input).

Exit 0 when every file is valid, 1 when any is not (with ``--strict``, also when there
is any warning: for CI), 2 when a path does not exist or holds no policy files.
``--format json`` prints one object for all files::

    {"valid": bool, "errors": [{"code", "file", "line", "column", "path", "message"}], "warnings": [...]}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check policy files",
        description="Check policy files (directories: every *.yaml / *.yml inside, recursively).",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a policy file, a directory of them, or - for standard input"
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1): for CI")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli._source import STDIN, read_policy
    from engine.cli._store_cmd import safe
    from engine.policy import check_paths
    from engine.policy._check import expand

    paths = [p for p in args.paths if p != STDIN]
    for raw in paths:
        if not Path(raw).exists():
            print(f"llm-policy validate: no such file or directory: {safe(raw)}", file=sys.stderr)
            return EXIT_USAGE
    files = expand(paths)
    if not files and len(paths) == len(args.paths):
        print(f"llm-policy validate: no *.yaml or *.yml files under {safe(' '.join(paths))}", file=sys.stderr)
        return EXIT_USAGE
    reports = ([read_policy(STDIN)] if STDIN in args.paths else []) + check_paths(files)
    errors = [issue for report in reports for issue in report.errors]
    warnings = [issue for report in reports for issue in report.warnings]
    valid = not errors and not (args.strict and warnings)
    if args.format == "json":
        body = {
            "valid": valid,
            "strict": args.strict,
            "errors": [i.to_json() for i in errors],
            "warnings": [i.to_json() for i in warnings],
        }
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        for issue in [*errors, *warnings]:
            print(issue.format())
        bad = sum(1 for r in reports if r.errors)
        summary = f"{len(reports)} file(s) checked: {len(reports) - bad} valid, {bad} invalid"
        strict = " (--strict: warnings fail)" if args.strict and warnings else ""
        print(summary + (f", {len(warnings)} warning(s){strict}" if warnings else ""))
    return EXIT_OK if valid else EXIT_INVALID
