"""``llm-policy callsites``: every call site a (shadow-mode) decision log has seen.

For each: calls, models, the median prompt length against the model's cache minimum,
how often a call re-sends a prefix an earlier call at the site sent (above the minimum:
what a cache could read), the latency its callers tolerate, and the rule that matched,
so rules are written from facts. ``--format json`` prints the whole report. Exit 0,
1 on an unreadable log, 2 when it is missing.
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
        "callsites",
        help="the call sites a decision log has seen, with the facts to write rules from",
        description="List every call site in a decision log: calls, models, prompt length against the "
        "cache minimum, prefix reuse, latency tolerance, and the rule that matched.",
    )
    parser.add_argument("--log", required=True, metavar="FILE", help="a JSON Lines decision log")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def _top(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in counts.items())


def _text(doc: dict[str, Any]) -> None:
    print(f"{len(doc['call_sites'])} call site(s) in {doc['records']} record(s)")
    for name, site in doc["call_sites"].items():
        tokens = site["prompt_tokens_median"]
        length = "no prompt recorded" if tokens is None else f"prompt ~{tokens} tokens (median)"
        if tokens is not None and site["cache_min_tokens"] is not None:
            length += f", cache minimum {site['cache_min_tokens']} ({site['above_cache_min_pct']:.0f}% above)"
        reuse = "-" if site["reuse_pct"] is None else f"{site['reuse_pct']:.0f}% of calls"
        print(f"\n{name}")
        print(f"  calls    {site['calls']}   models: {_top(site['models'])}   roles: {_top(site['roles'])}")
        print(f"  length   {length}")
        print(f"  reuse    {reuse} re-send a cacheable prefix (median {site['reused_tokens_median']} tokens)")
        print(f"  latency  {_top(site['latency_tolerance'])}: {site['hint']}")
        print(f"  rule     {_top(site['rules'])}")


def run(args: argparse.Namespace) -> int:
    from engine.plan import LogError
    from engine.plan._callsites import callsites_report

    if not Path(args.log).is_file():
        print(f"llm-policy callsites: no such file: {args.log}", file=sys.stderr)
        return EXIT_USAGE
    try:
        doc = callsites_report(args.log)
    except LogError as exc:
        print(f"llm-policy callsites: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        _text(doc)
    return EXIT_OK
