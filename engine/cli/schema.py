"""``llm-policy schema``: print the policy JSON Schema (for editors and other tools)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.cli import EXIT_OK

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the policy JSON Schema",
        description="Print schemas/policy.v1.json: the JSON Schema (2020-12) policies are checked against.",
    )
    parser.add_argument("--format", choices=("json",), default="json", help="json (the only form)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.policy import schema

    print(json.dumps(schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
