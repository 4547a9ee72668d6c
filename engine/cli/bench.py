"""``llm-policy bench``: a reference workload under every arm, billed by the emulator.

``--format json`` prints ``{"workload", "calls", "arms": {ARM: {"cost_usd",
"input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens",
"batch_share", "wall_s"}}, "oracle_lower_bound_usd", "online_lower_bound_usd",
"plan", "goals"}``. With ``--results DIR`` a run also writes a markdown table and a
PNG chart there (nothing is written into the current directory unless asked). Exit
0 when every goal holds, 1 when one does not or the policy is invalid (its findings
on stderr), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE

__all__ = ["DEFAULT_POLICY", "register", "run"]

DEFAULT_POLICY = "policies/examples/pipeshub-savings.yaml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="compare the policy with the peers on a reference workload",
        description="Run a reference workload under no-policy, LangChain's caching middleware, "
        "LiteLLM's system-message caching and the policy; read each arm's cost from the emulator.",
    )
    parser.add_argument(
        "--workload",
        required=True,
        choices=(
            "pipeshub-indexing",
            "pipeshub-agent",
            "indexing",
            "agent",
            "agent-pauses-30m",
            "agent-pauses-2h",
            "retrieval",
            "retrieval-long",
            "mixed",
        ),
    )
    parser.add_argument(
        "--hit-rates",
        default="0.3,0.6,0.98",
        help="batch cache hit rates the batching arms run under (default 0.3,0.6,0.98; '' = the "
        "emulator's documented per-batch draw)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--emulator-url", metavar="URL", help="an emulator already running (default: start one)"
    )
    parser.add_argument(
        "--policy", metavar="FILE", help=f"the policy arm's policy (default: {DEFAULT_POLICY})"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="workload size as a fraction of full (default 1)"
    )
    parser.add_argument("--seed", type=int, help="workload seed (default: the workload's own)")
    parser.add_argument("--arms", help="comma-separated subset of the arms")
    parser.add_argument(
        "--results", metavar="DIR", help="write a markdown table and a PNG chart into DIR (default: none)"
    )
    parser.add_argument("--no-results", action="store_true", help="write no table or chart (the default)")
    parser.add_argument("--trace-out", metavar="FILE", help="also write the recorded trace (JSON Lines)")
    parser.set_defaults(handler=run)


def _policy_path(given: str | None) -> Path:
    from engine._resources import resource_path

    return Path(given) if given else Path(resource_path(DEFAULT_POLICY))


def checked_policy(given: str | None, command: str) -> Path | int:
    """The policy file to run, validated before anything starts: a missing file is a usage
    error (2), an invalid one is refused with every located finding (1), in a second,
    instead of a run that ends in a traceback or a minute later."""
    from engine.policy import check_paths
    from engine.policy._errors import printable

    policy = _policy_path(given)
    if not policy.is_file():
        print(f"llm-policy {command}: no such policy file: {printable(str(policy))}", file=sys.stderr)
        return EXIT_USAGE
    (report,) = check_paths([policy])
    if not report.valid:
        for issue in report.errors:
            print(issue.format(), file=sys.stderr)
        print(f"llm-policy {command}: the policy is invalid; nothing was run", file=sys.stderr)
        return EXIT_INVALID
    return policy


def _emulator(url: str | None) -> AbstractContextManager[Any]:
    if url:
        return nullcontext(url)
    from engine.emulator import run_emulator

    # The documented batch cache model (batches_cache.py): items run in concurrent waves,
    # each reads an available entry at the batch hit rate, which the run sets per arm
    # (--hit-rates); the planner's replay bills batches by the same model.
    return run_emulator(port=0, requests_log_size=5000)


def _progress_bar(quiet: bool) -> Any:
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=True, disable=quiet)


def run(args: argparse.Namespace) -> int:
    from engine.bench.arms import ARMS
    from engine.bench.harness import run_arms
    from engine.bench.results import bench_document, write_chart, write_markdown
    from engine.bench.workloads import build_workload
    from engine.plan._trace import write_trace

    policy = checked_policy(args.policy, "bench")
    if isinstance(policy, int):
        return policy
    arms = tuple(a.strip() for a in args.arms.split(",")) if args.arms else ARMS
    if "no-policy" not in arms:
        arms = ("no-policy", *arms)
    workload = build_workload(args.workload, seed=args.seed, scale=args.scale)
    with _emulator(args.emulator_url) as emu, _progress_bar(args.format == "json") as bar:
        base_url = emu if isinstance(emu, str) else emu.base_url
        task = bar.add_task(f"{args.workload}", total=len(workload.calls) * len(arms))
        try:
            results = run_arms(
                workload,
                base_url,
                policy,
                arms=arms,
                progress=lambda _what, n: bar.advance(task, n),
                hit_rates=_rates(args.hit_rates),
            )
        except ValueError as exc:
            print(f"llm-policy bench: {exc}", file=sys.stderr)
            return EXIT_USAGE
    trace = results["no-policy"].trace
    doc = bench_document(args.workload, results, trace, str(policy))
    if args.trace_out:
        write_trace(args.trace_out, trace)
    if args.results and not args.no_results:
        out = Path(args.results)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{args.workload}" + (f"-x{args.scale:g}" if args.scale != 1.0 else "")
        doc["files"] = [
            str(write_markdown(doc, out / f"{stem}.md")),
            str(write_chart(doc, out / f"{stem}.png")),
        ]
    print(json.dumps(doc, indent=2) if args.format == "json" else _text(doc))
    return EXIT_OK if all(g["holds"] for g in doc["goals"].values()) else EXIT_INVALID


def _rates(raw: str) -> tuple[float, ...]:
    return tuple(float(r) for r in raw.split(",") if r.strip())


def _text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['workload']}: {doc['calls']} calls"]
    for name, a in doc["arms"].items():
        lines.append(
            f"  {name:22s} ${a['cost_usd']:>10.4f}  read {a['cache_read_tokens']:>10,}  "
            f"write {a['cache_write_tokens']:>9,}  input {a['input_tokens']:>10,}  "
            f"batch {a['batch_share']:.0%}"
        )
    lines.append(f"  {'lower bound':22s} ${doc['oracle_lower_bound_usd']:>10.4f}")
    if doc.get("online_lower_bound_usd"):
        lines.append(f"  {'online lower bound':22s} ${doc['online_lower_bound_usd']:>10.4f}  (pauses unseen)")
    for name, figures in (doc.get("plan") or {}).items():
        lines.append(f"  planner/report {name}: {figures}")
    for goal, figures in doc["goals"].items():
        lines.append(f"  goal {goal}: {'holds' if figures['holds'] else 'does NOT hold'} {figures}")
    return "\n".join(lines)
