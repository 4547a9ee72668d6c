"""``llm-policy explain``: what a policy decides for one call, and why.

Text: a sentence or two, then the rule trace. ``--format json``::

    {"strategy", "rule", "policy": {"name", "revision", "version"},
     "cache": {"mode", "ttl", "breakpoints"} | null,
     "batch": {"mode", "maxRequests", "maxWait", "deadline", "retries", "onFailure"} | null,
     "trace": [{"rule", "matched", "why"}]}

Exit 0 with a decision, 1 when the policy is invalid, 2 when the file does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from engine.decision import BatchPlan, CachePlan, Decision

__all__ = ["decision_json", "decision_text", "register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show the decision for one call and the rule trace",
        description="Evaluate a policy for one call and say which rule answered and why.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    parser.add_argument("--call-site", required=True, metavar="ID", help="e.g. indexing.table_rows")
    for flag, what in (
        ("role", "e.g. indexing"),
        ("provider", "e.g. anthropic"),
        ("model", "a model id"),
        ("org", "an organisation id"),
    ):
        parser.add_argument(f"--{flag}", metavar=flag[0].upper(), help=what)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.compile import compile_policy
    from engine.decision import CallContext
    from engine.evaluate import explain
    from engine.policy import PolicyError, load_policy

    if not Path(args.policy).is_file():
        print(f"llm-policy explain: no such file: {args.policy}", file=sys.stderr)
        return EXIT_USAGE
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        for issue in exc.errors:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    ctx = CallContext(args.call_site, args.role, args.provider, args.model, args.org)
    decision = explain(compile_policy(policy), ctx)
    if args.format == "json":
        print(json.dumps(decision_json(decision), indent=2, ensure_ascii=False))
    else:
        print(decision_text(decision, args.call_site))
    return EXIT_OK


def _cache_json(plan: CachePlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {"mode": plan.mode, "ttl": plan.ttl, "breakpoints": list(plan.breakpoints)}


def _batch_json(plan: BatchPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "mode": plan.mode,
        "maxRequests": plan.max_requests,
        "maxWait": plan.max_wait,
        "deadline": plan.deadline,
        "retries": plan.retries,
        "onFailure": plan.on_failure,
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """The decision in the JSON shape ``explain --format json`` prints."""
    return {
        "strategy": decision.strategy,
        "rule": decision.rule,
        "policy": {"name": decision.policy_name, "revision": decision.revision, "version": decision.version},
        "cache": _cache_json(decision.cache),
        "batch": _batch_json(decision.batch),
        "trace": [{"rule": s.rule, "matched": s.matched, "why": s.why} for s in decision.trace],
    }


def _plans_sentence(decision: Decision) -> str:
    parts = []
    if decision.cache is not None:
        where = (
            f"breakpoints {', '.join(decision.cache.breakpoints)}"
            if decision.cache.mode == "explicit"
            else "breakpoints placed where they pay"
        )
        parts.append(f"prompt caching ({decision.cache.mode}, ttl {decision.cache.ttl}, {where})")
    if decision.batch is not None:
        b = decision.batch
        parts.append(
            f"the Message Batches API ({b.mode}: up to {b.max_requests} requests, wait at most {b.max_wait}, "
            f"deadline {b.deadline}, {b.retries} retries, then {b.on_failure})"
        )
    return " and ".join(parts) if parts else "no caching and no batching: the call goes direct"


def decision_text(decision: Decision, call_site: str) -> str:
    """A sentence or two a person reads, then the trace, one line per rule tried."""
    policy = f'policy "{decision.policy_name}" (revision {decision.revision[:12]})'
    if not decision.enabled:
        head = f"{call_site}: direct. The {policy} is disabled (spec.enabled: false)."
    else:
        who = f'rule "{decision.rule}"' if decision.rule else "no rule matched, so spec.defaults"
        head = f"{call_site}: {decision.strategy}. In {policy}, {who} decides: {_plans_sentence(decision)}."
        if decision.mode == "shadow":
            head += " Shadow mode: the decision is logged and estimated, the call is sent unchanged."
        if decision.rollout < 100:
            head += f" Rollout {decision.rollout}%: other calls go direct."
    lines = [head, "", "trace:"]
    lines += [f"  {'matched' if s.matched else 'skipped'}  {s.rule}: {s.why}" for s in decision.trace]
    return "\n".join(lines)
