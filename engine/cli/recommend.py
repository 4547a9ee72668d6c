"""``llm-policy recommend``: propose a policy from a recorded trace, with its projected saving.

Prints the proposed policy (YAML, valid against schemas/policy.v1.json), then, as
comments, what each call site would cost under it. ``--output FILE`` writes the
policy to a file instead. ``--format json`` prints ``{"policy": document, "projection":
{"calls", "cost_usd", "baseline_usd", "saving_pct", "lower_bound_usd"}, "call_sites":
[{"call_site", "cache", "batch", "cost_usd", "baseline_usd"}]}``. Exit 0, 1 on an
invalid trace, 2 when it is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="propose a policy from recorded traffic",
        description="Pick, per call site, the caching and batching that would have cost least on the trace.",
    )
    parser.add_argument("--trace", required=True, metavar="FILE")
    parser.add_argument("--name", default="recommended", help="the proposed policy's metadata.name")
    parser.add_argument("--output", metavar="FILE", help="write the policy here (default: stdout)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.plan import load_trace_or_fail
    from engine.compile import compile_policy
    from engine.plan import plan_with, policy_placer, recommend
    from engine.policy import PolicyError, load_policy_text

    records, code = load_trace_or_fail(args.trace, "recommend")
    if records is None:
        return code
    text, choices = recommend(records, args.name)
    try:
        policy = load_policy_text(text, source="<recommended>")
    except PolicyError as exc:  # a bug here, never the user's: say so plainly
        print(f"llm-policy recommend: the proposal does not validate: {exc}", file=sys.stderr)
        return EXIT_INVALID
    result = plan_with(records, policy_placer(compile_policy(policy)), args.name)
    lines = [
        f"# projected on {result.calls} recorded calls: {result.predicted.cost_usd:.4f} USD "
        f"vs {result.baseline.cost_usd:.4f} USD without a policy ({result.saving_pct:.1f}% saved); "
        f"lower bound {result.lower_bound_usd:.4f} USD"
    ]
    for c in choices:
        what = "cache off" if c.cache is None else f"cache {','.join(c.cache.breakpoints)} ttl {c.cache.ttl}"
        lines.append(
            f"#   {c.call_site}, on its own calls: {what}{', batch' if c.batch else ''}: "
            f"{c.cost_usd:.4f} USD (was {c.baseline_usd:.4f})"
        )
    header = "# yaml-language-server: $schema=../schemas/policy.v1.json\n" + "\n".join(lines) + "\n"
    if args.format == "json":
        import json

        body = {
            "policy": policy.document,
            "projection": {
                "calls": result.calls,
                "cost_usd": result.predicted.cost_usd,
                "baseline_usd": result.baseline.cost_usd,
                "saving_pct": result.saving_pct,
                "lower_bound_usd": result.lower_bound_usd,
            },
            "call_sites": [
                {
                    "call_site": c.call_site,
                    "cache": None
                    if c.cache is None
                    else {"breakpoints": list(c.cache.breakpoints), "ttl": c.cache.ttl},
                    "batch": bool(c.batch),
                    "cost_usd": c.cost_usd,
                    "baseline_usd": c.baseline_usd,
                }
                for c in choices
            ],
        }
        print(json.dumps(body, indent=2, ensure_ascii=False))
        if args.output:
            Path(args.output).write_text(header + text, encoding="utf-8")
        return EXIT_OK
    if args.output:
        Path(args.output).write_text(header + text, encoding="utf-8")
        print("\n".join(lines))
    else:
        print(header + text, end="")
    return EXIT_OK
