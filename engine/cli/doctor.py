"""``llm-policy doctor``: why calls paid a cache write or missed a read, and what it cost.

Text: per call site, each cause with its calls and USD, then every miss (time, call
site, cause, detail). ``--format json`` prints ``{"calls", "misses", "call_sites"}``.
Exit 0, 1 on an unreadable log, 2 when it is missing.
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
        "doctor",
        help="why calls missed the cache, per call site, and what each cause cost",
        description="Compare each call with its call site's previous one and name why it paid a cache "
        "write or missed a read: a changed block, an expired TTL, a prefix below the model's minimum, "
        "the 20-block lookback, changed tools/system/tool_choice/thinking/effort, the caller's markers "
        "using every slot, a batch's best-effort cache.",
    )
    parser.add_argument("--log", required=True, metavar="FILE", help="a JSON Lines decision log")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.doctor import doctor_report
    from engine.plan import LogError
    from engine.policy._errors import printable

    if not Path(args.log).is_file():
        print(f"llm-policy doctor: no such file: {printable(args.log)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        doc = doctor_report(args.log)
    except (LogError, UnicodeDecodeError) as exc:
        print(f"llm-policy doctor: {printable(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{doc['calls']} calls, {len(doc['misses'])} paid a cache write or missed a read")
    print(f"{'call site':40s} {'cause':18s} {'calls':>6s} {'USD':>10s}")
    for site, causes in sorted(doc["call_sites"].items()):
        for cause, row in sorted(causes.items(), key=lambda kv: -kv[1]["cost_usd"]):
            print(f"{printable(site):40s} {cause:18s} {row['calls']:>6d} {row['cost_usd']:>10.6f}")
    if doc["misses"]:
        print()
    for miss in doc["misses"]:
        print(f"{miss['time']}  {printable(miss['call_site'])}  {miss['cause']}: {printable(miss['detail'])}")
    return EXIT_OK
