"""``llm-policy report``: realized savings per call site from a decision log.

Text: one line per call site (calls, realized and counterfactual cost, saving,
batch share, cache hits, and for pooled calls the average batch fill and wait).
``--format json`` prints ``{"calls", "total", "call_sites"}``. Exit 0, 1 on an
unreadable log, 2 when it is missing.
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
        "report",
        help="realized savings per call site from a decision log",
        description="Sum what each call cost and what it would have cost without the policy, per call site.",
    )
    parser.add_argument("--log", required=True, metavar="FILE", help="a JSON Lines decision log")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def _pool(row: dict[str, Any]) -> str:
    """Average batch fill and pool wait of the pooled calls ("-" when none were pooled)."""
    if row.get("pool_fill_avg") is None:
        return f"{'-':>5s} {'-':>7s}"
    return f"{row['pool_fill_avg']:>5.1f} {row['pool_wait_ms_avg'] / 1000:>7.2f}"


def run(args: argparse.Namespace) -> int:
    from engine.plan import LogError, savings_report

    if not Path(args.log).is_file():
        print(f"llm-policy report: no such file: {args.log}", file=sys.stderr)
        return EXIT_USAGE
    try:
        doc = savings_report(args.log)
    except LogError as exc:
        print(f"llm-policy report: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(
        f"{'call site':44s} {'calls':>6s} {'paid USD':>10s} {'without':>10s} {'saved':>8s} "
        f"{'batch':>6s} {'hits':>6s} {'fill':>5s} {'wait s':>7s}"
    )
    rows = [*doc["call_sites"].items(), ("total", doc["total"])]
    for site, r in rows:
        calls = r["calls"] or 1
        print(
            f"{site:44s} {r['calls']:>6d} {r['realized_usd']:>10.4f} {r['counterfactual_usd']:>10.4f} "
            f"{r['saved_pct']:>7.1f}% {r['batch_calls'] / calls:>6.0%} {r['cache_hits'] / calls:>6.0%} "
            f"{_pool(r)}"
        )
    total = doc["total"]
    if total["shadow_calls"]:
        print(
            f"shadow mode: {total['shadow_calls']} calls paid {total['shadow_paid_usd']:.4f} USD; enforced, "
            f"the policy would have paid {total['shadow_policy_usd']:.4f} USD "
            f"({total['shadow_saving_pct']:.1f}% less)"
        )
    if total["bypassed"]:
        print(f"bypassed: {total['bypassed']} record(s) of models the host calls past the engine")
    return EXIT_OK
