"""``llm-policy plan``: what a policy would cost on a recorded trace (or decision log).

Replays the trace with the emulator's caching and pricing rules and prints, per
call site and in total: cost, tokens by kind, hit rate and batch share, next to
the trace's cost before any policy, its recorded cost (when the records carry
one) and the provable lower bound. Exit 0, 1 on an invalid policy or trace,
2 when a file is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE

__all__ = ["load_trace_or_fail", "register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="predict what a policy would cost on recorded traffic",
        description="Replay a trace (or a decision log) under a policy and report what it would cost.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE")
    parser.add_argument(
        "--trace", required=True, metavar="FILE", help="JSON Lines: trace.v1 or decision-log records"
    )
    parser.add_argument(
        "--batch-hit-rate",
        type=float,
        metavar="RATE",
        help="chance a batch item reads an available cache entry (default: what the trace shows, else 0.64)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def load_trace_or_fail(path: str, command: str) -> tuple[list[Any] | None, int]:
    """The trace's records, or None and the exit code after printing why."""
    from engine.plan import TraceError, read_trace

    if not Path(path).is_file():
        print(f"llm-policy {command}: no such file: {path}", file=sys.stderr)
        return None, EXIT_USAGE
    try:
        records = read_trace(path)
    except TraceError as exc:
        print(f"llm-policy {command}: {exc}", file=sys.stderr)
        return None, EXIT_INVALID
    if not records:
        print(f"llm-policy {command}: {path} holds no records", file=sys.stderr)
        return None, EXIT_INVALID
    return records, EXIT_OK


def run(args: argparse.Namespace) -> int:
    from engine.plan import plan_policy
    from engine.policy import PolicyError

    if not Path(args.policy).is_file():
        print(f"llm-policy plan: no such file: {args.policy}", file=sys.stderr)
        return EXIT_USAGE
    records, code = load_trace_or_fail(args.trace, "plan")
    if records is None:
        return code
    try:
        result = plan_policy(records, args.policy, batch_hit_rate=args.batch_hit_rate)
    except PolicyError as exc:
        for issue in exc.errors:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    doc = result.as_dict()
    print(json.dumps(doc, indent=2) if args.format == "json" else plan_text(doc))
    return EXIT_OK


def plan_text(doc: dict[str, Any]) -> str:
    """A table per call site, then the totals against baseline, recorded cost and floor."""
    lines = [
        f"policy {doc['policy']}: {doc['calls']} calls",
        f"{'call site':44s} {'calls':>6s} {'USD':>10s} {'baseline':>10s} {'floor':>10s} "
        f"{'hit':>5s} {'batch':>6s}",
    ]
    for site, s in doc["call_sites"].items():
        lines.append(
            f"{site:44s} {s['calls']:>6d} {s['cost_usd']:>10.4f} {s['baseline_usd']:>10.4f} "
            f"{s['lower_bound_usd']:>10.4f} {s['hit_rate']:>5.0%} {s['batch_share']:>6.0%}"
        )
    t = doc["total"]
    lines.append(
        f"{'total':44s} {t['calls']:>6d} {t['cost_usd']:>10.4f} {doc['baseline_usd']:>10.4f} "
        f"{doc['lower_bound_usd']:>10.4f} {t['hit_rate']:>5.0%} {t['batch_share']:>6.0%}"
    )
    lines.append(
        f"tokens: input {t['input_tokens']:,}, cache write {t['cache_write_tokens']:,}, "
        f"cache read {t['cache_read_tokens']:,}, output {t['output_tokens']:,}"
    )
    recorded = doc["recorded_usd"]
    lines.append(
        f"saving vs. no policy: {doc['saving_pct']:.1f}%"
        + (f"; recorded cost {recorded:.4f} USD" if recorded is not None else "; the trace records no cost")
    )
    return "\n".join(lines)
