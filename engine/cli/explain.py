"""``llm-policy explain``: what the engine will do with one call, and why.

The policy comes from a file (``--policy FILE``, ``-`` for standard input) or from the
store (``--store [URL]``: the active version of ``--name``, default the policy the engine
loads, ``$LLM_POLICY_NAME`` or ``pipeshub-default``). ``--provider`` defaults to
``anthropic``, the string PipesHub's factory passes for Claude.

The answer is what the engine actually does, not only what the rule says: a provider
that does not reach Claude (``openai``...) or a disabled policy leaves the model
``untouched``; shadow mode sends the call unchanged (``direct``); plans the transport or
the model cannot take are cut down (with ``--model``), exactly as at run time.

Text: a sentence or two, then the rule trace. ``--format json``::

    {"strategy": what the engine does ("untouched", "direct", "cache", "batch", "batch+cache"),
     "engine": {"touches", "transport", "mode", "rollout", "notes"},
     "rule", "policy": {"name", "revision", "version"},
     "cache": {"mode", "ttl", "breakpoints"} | null,            (as applied)
     "batch": {"mode", "maxRequests", "maxWait", "deadline", "retries", "onFailure"} | null,
     "decided": {"strategy", "cache", "batch"},                 (the policy's own answer)
     "trace": [{"rule", "matched", "why"}]}

Exit 0 with an answer, 1 when the policy is invalid or the engine would refuse the call
(``onUnsupported: error``), 2 when the file does not exist, 4 when the store is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from engine.decision import BatchPlan, CachePlan, Decision

__all__ = ["Outcome", "decision_json", "decision_text", "outcome_for", "register", "run"]

_STORE_DEFAULT = "\0default"  # --store given without a URL: $LLM_POLICY_STORE, else the default


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show what the engine does with one call, and the rule trace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", metavar="FILE", help="the policy file, or - for standard input")
    source.add_argument(
        "--store",
        metavar="URL",
        nargs="?",
        const=_STORE_DEFAULT,
        help="the active version in the store (URL default: $LLM_POLICY_STORE, else the default store)",
    )
    parser.add_argument("--name", metavar="NAME", help="with --store: the policy (default: the engine's)")
    parser.add_argument("--call-site", required=True, metavar="ID", help="e.g. indexing.table_rows")
    parser.add_argument("--role", metavar="R", help="e.g. indexing")
    parser.add_argument(
        "--provider", metavar="P", default="anthropic", help="the factory's provider (default: anthropic)"
    )
    parser.add_argument("--model", metavar="M", help="a model id (checks the model's limits too)")
    parser.add_argument("--org", metavar="O", help="an organisation id")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.store is not None:
        return _from_store(args)
    from engine.cli._source import STDIN, read_policy
    from engine.cli._store_cmd import safe

    if args.policy != STDIN and not Path(args.policy).is_file():
        print(f"llm-policy explain: no such file: {safe(args.policy)}", file=sys.stderr)
        return EXIT_USAGE
    report = read_policy(args.policy)
    if report.policy is None:
        for issue in report.errors:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    return _answer(args, report.policy, None)


def _from_store(args: argparse.Namespace) -> int:
    from engine.cli._store_cmd import engine_policy_name, run_with_store
    from engine.policy import load_policy_text
    from engine.store import PolicyStore

    args.store = None if args.store == _STORE_DEFAULT else args.store
    name = args.name or engine_policy_name()

    def work(store: PolicyStore) -> int:
        stored = store.get(name)
        where = f"{store.url}#{name}@{stored.version}"
        policy = load_policy_text(json.dumps(stored.document), source=where)
        return _answer(args, policy, stored.version)

    return run_with_store(args, work)


def _answer(args: argparse.Namespace, policy: Any, version: int | None) -> int:
    from engine.compile import compile_policy
    from engine.decision import CallContext
    from engine.evaluate import explain

    ctx = CallContext(args.call_site, args.role, args.provider, args.model, args.org)
    decision = explain(compile_policy(policy, version=version), ctx)
    outcome = outcome_for(decision, args.provider, args.model)
    if args.format == "json":
        print(json.dumps(decision_json(decision, outcome), indent=2, ensure_ascii=False))
    else:
        print(decision_text(decision, args.call_site, outcome))
    return EXIT_INVALID if outcome.refused else EXIT_OK


@dataclass(frozen=True)
class Outcome:
    """What the engine does with the call: the plans as applied and the reasons."""

    strategy: str
    touches: bool
    transport: str | None
    cache: CachePlan | None
    batch: BatchPlan | None
    notes: list[str] = field(default_factory=list)
    refused: bool = False


def outcome_for(decision: Decision, provider: str | None, model: str | None) -> Outcome:
    """The decision as the engine applies it (``wrap_factory`` and the call hooks)."""
    from dataclasses import replace

    from engine.providers.anthropic.transport import CLAUDE_PROVIDERS, check_support, transport_for_provider

    if provider not in CLAUDE_PROVIDERS:
        why = f"provider {provider!r} does not reach Claude; the engine returns the factory's model as built"
        return Outcome("untouched", False, None, None, None, [why])
    if not decision.enabled:
        return Outcome("untouched", False, None, None, None, ["the policy is disabled (spec.enabled: false)"])
    transport = transport_for_provider(provider)
    cache, batch, strategy, notes = decision.cache, decision.batch, str(decision.strategy), []
    refused = False
    if model:
        support = check_support(replace(decision, on_unsupported="ignore"), transport=transport, model=model)
        cache, batch, strategy, notes = (
            support.cache,
            support.batch,
            str(support.strategy),
            list(support.messages),
        )
        refused = bool(notes) and decision.on_unsupported == "error"
    else:
        notes.append("no --model: the model's limits (cache minimum, batch support) are not checked")
    if refused:
        notes.append("onUnsupported: error, so the engine raises instead of sending the call")
        return Outcome("refused", True, transport, None, None, notes, refused=True)
    if decision.mode == "shadow" and strategy != "direct":
        notes.append(f"shadow mode: {strategy} is logged and estimated, the call is sent unchanged")
        return Outcome("direct", True, transport, None, None, notes)
    if decision.rollout < 100 and strategy != "direct":
        notes.append(f"rollout {decision.rollout}%: other calls go direct")
    return Outcome(strategy, True, transport, cache, batch, notes)


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


def decision_json(decision: Decision, outcome: Outcome | None = None) -> dict[str, Any]:
    """The answer in the JSON shape ``explain --format json`` prints (without ``outcome``:
    the policy's decision as if the engine applied it unchanged)."""
    outcome = outcome or Outcome(
        decision.strategy, True, None, decision.cache, decision.batch, [], refused=False
    )
    return {
        "strategy": outcome.strategy,
        "engine": {
            "touches": outcome.touches,
            "transport": outcome.transport,
            "mode": decision.mode,
            "rollout": decision.rollout,
            "notes": outcome.notes,
        },
        "rule": decision.rule,
        "policy": {"name": decision.policy_name, "revision": decision.revision, "version": decision.version},
        "cache": _cache_json(outcome.cache),
        "batch": _batch_json(outcome.batch),
        "decided": {
            "strategy": decision.strategy,
            "cache": _cache_json(decision.cache),
            "batch": _batch_json(decision.batch),
        },
        "trace": [{"rule": s.rule, "matched": s.matched, "why": s.why} for s in decision.trace],
    }


def _plans_sentence(cache: CachePlan | None, batch: BatchPlan | None) -> str:
    parts = []
    if cache is not None:
        where = (
            f"breakpoints {', '.join(cache.breakpoints)}"
            if cache.mode == "explicit"
            else "breakpoints placed where they pay"
        )
        parts.append(f"prompt caching ({cache.mode}, ttl {cache.ttl}, {where})")
    if batch is not None:
        parts.append(
            f"the Message Batches API ({batch.mode}: up to {batch.max_requests} requests, wait at most "
            f"{batch.max_wait}, deadline {batch.deadline}, {batch.retries} retries, then {batch.on_failure})"
        )
    return " and ".join(parts) if parts else "no caching and no batching: the call goes direct"


def decision_text(decision: Decision, call_site: str, outcome: Outcome | None = None) -> str:
    """A sentence or two a person reads, then the trace, one line per rule tried."""
    outcome = outcome or Outcome(decision.strategy, True, None, decision.cache, decision.batch)
    policy = f'policy "{decision.policy_name}" (revision {decision.revision[:12]})'
    if not outcome.touches:
        head = f"{call_site}: untouched. {outcome.notes[0][0].upper()}{outcome.notes[0][1:]} ({policy})."
    else:
        who = f'rule "{decision.rule}"' if decision.rule else "no rule matched, so spec.defaults"
        head = (
            f"{call_site}: {outcome.strategy}. In {policy}, {who} decides: "
            f"{_plans_sentence(decision.cache, decision.batch)}."
        )
        if outcome.notes:
            head += " " + " ".join(f"{note[0].upper()}{note[1:]}." for note in outcome.notes)
        if outcome.strategy not in ("direct", "refused") and (
            outcome.cache != decision.cache or outcome.batch != decision.batch
        ):
            head += f" Applied: {_plans_sentence(outcome.cache, outcome.batch)}."
    lines = [head, "", "trace:"]
    lines += [f"  {'matched' if s.matched else 'skipped'}  {s.rule}: {s.why}" for s in decision.trace]
    return "\n".join(lines)
