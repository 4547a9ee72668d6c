"""``llm-policy demo``: before and after, on PipesHub-like traffic, in under a minute.

Starts the emulator in-process, runs a few hundred calls over PipesHub's call
sites (indexing extraction, agent conversations, retrieval rewrites) through the
stand-in factory twice: plain, then wrapped with the shipped
``pipeshub-savings`` policy, and prints what each cost as the emulator billed it.
No API key, no network. ``--live`` runs a tiny sample against the real API
instead (needs ``ANTHROPIC_API_KEY``; prints the estimated spend and asks first
unless ``--yes``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from engine.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="see what the policy saves on PipesHub-like traffic (emulator, no API key)",
        description="Run PipesHub-like traffic with and without the shipped policy and compare the bills.",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="the policy to demo (default: the shipped pipeshub-savings)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="traffic size (default 1: a few hundred calls)"
    )
    parser.add_argument(
        "--live", action="store_true", help="a tiny sample against the real API (costs money)"
    )
    parser.add_argument("--yes", action="store_true", help="with --live: do not ask before spending")
    parser.set_defaults(handler=run)


def _table(before: dict[str, Any], after: dict[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    table.add_column("before (no policy)", justify="right")
    table.add_column("after (policy)", justify="right")
    for key, label in (
        ("calls", "calls"),
        ("input_tokens", "input tokens"),
        ("cache_write_tokens", "cache write tokens"),
        ("cache_read_tokens", "cache read tokens"),
        ("output_tokens", "output tokens"),
    ):
        table.add_row(label, f"{before[key]:,}", f"{after[key]:,}")
    table.add_row("batch share", f"{before['batch_share']:.0%}", f"{after['batch_share']:.0%}")
    table.add_row("dollars", f"${before['cost_usd']:.4f}", f"${after['cost_usd']:.4f}")
    saved = (
        100.0 * (before["cost_usd"] - after["cost_usd"]) / before["cost_usd"] if before["cost_usd"] else 0.0
    )
    table.add_row("savings", "", f"[bold]{saved:.1f}%[/bold]")
    return table


class _Lines:
    """Progress as plain lines when stdout is not a terminal (CI logs, ``| tee``): every tenth."""

    def __init__(self, console: Any, total: int) -> None:
        self.console, self.total, self.done, self.shown = console, total, 0, 0

    def __call__(self, _what: str, n: int) -> None:
        self.done += n
        if self.done * 10 // self.total > self.shown or self.done == self.total:
            self.shown = self.done * 10 // self.total
            self.console.print(f"calls: {self.done}/{self.total}")


def _run(workload: Any, policy: Path, console: Any, log_dir: Path) -> Any:
    from rich.progress import Progress

    from engine.bench.harness import run_arms
    from engine.emulator import run_emulator

    total = 2 * len(workload.calls)
    with run_emulator(port=0) as emu:
        if not console.is_terminal:
            lines = _Lines(console, total)
            return run_arms(workload, emu.base_url, policy, arms=("no-policy", "policy"), progress=lines,
                            log_dir=log_dir)  # fmt: skip
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("calls", total=total)
            return run_arms(
                workload,
                emu.base_url,
                policy,
                arms=("no-policy", "policy"),
                progress=lambda _w, n: bar.advance(task, n),
                log_dir=log_dir,
            )


def _sites_table(log: Path) -> Any:
    from rich.table import Table

    from engine.bench.demo_report import call_site_rows

    table = Table(title="Per call site, with the policy (from its decision log)")
    for name, justify in (("call site", "left"), ("calls", "right"), ("uncached in", "right"),
                          ("cache written", "right"), ("cache read", "right"), ("paid", "right"),
                          ("without", "right"), ("batched calls waited", "left")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in call_site_rows(log):
        table.add_row(r["call_site"], f"{r['calls']:,}", f"{r['uncached']:,}", f"{r['written']:,}",
                      f"{r['read']:,}", f"${r['paid']:.4f}", f"${r['without']:.4f}", r["wait"])  # fmt: skip
    return table


def _emulated(args: argparse.Namespace, policy: Path) -> int:
    import tempfile

    from rich.console import Console
    from rich.table import Table

    from engine.bench.demo_report import answers_line, price_source, totals_rows
    from engine.bench.workloads import build_workload

    console = Console()
    if not console.is_terminal:  # a CI log or a pipe: wide enough for the per-call-site table
        console = Console(width=150)
    workload = build_workload("mixed", scale=args.scale)
    log_dir = Path(tempfile.mkdtemp(prefix="llm-policy-demo-"))
    console.print(
        f"Emulator in-process; {len(workload.calls)} calls over "
        f"{len({c.call_site for c in workload.calls})} PipesHub call sites, twice: "
        f"plain factory, then wrapped with policy {policy}."
    )
    results = _run(workload, policy, console, log_dir)
    before, after = results["no-policy"], results["policy"]
    table = Table(title="What the emulator billed")
    for column in ("", "before (no policy)", "after (policy)"):
        table.add_column(column, justify="right" if column else "left")
    for row in totals_rows(before, after):
        table.add_row(*row)
    console.print(table)
    log = log_dir / "decisions.jsonl"
    console.print(_sites_table(log))
    console.print(answers_line(before, after))
    console.print(price_source(workload.model))
    console.print(
        "Latency: batched calls wait for their Message Batch (the emulator ends batches in seconds; "
        "the API usually within an hour, at most 24 h); streaming and synchronous calls never wait."
    )
    console.print(f"Decision log: {log}")
    console.print(f"Next: llm-policy doctor --log {log}   (why calls missed the cache)")
    console.print(f"      llm-policy report --log {log}   (savings per call site)")
    console.print(f"      llm-policy validate {policy} && llm-policy publish {policy} --author YOU")
    return EXIT_OK


def _live(args: argparse.Namespace, policy: Path) -> int:
    from engine.bench.live import estimate_spend, run_live
    from engine.bench.workloads import build_workload

    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        print(
            "llm-policy demo --live: set ANTHROPIC_API_KEY first (the live run calls the real API)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    workload = build_workload("mixed", scale=min(args.scale, 0.03))
    estimate = estimate_spend(workload)
    print(
        f"--live: {len(workload.calls)} calls per arm, 2 arms, at most about ${estimate:.2f} on your account."
    )
    print("Calls the policy batches wait until their Message Batch ends (usually minutes).")
    if not args.yes and input("Proceed? [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing sent")
        return EXIT_INVALID
    from rich.console import Console

    results = run_live(workload, key, policy)
    rows = []
    for arm in ("no-policy", "policy"):
        u = results[arm]["usage"]
        rows.append(
            {
                "calls": len(workload.calls),
                "input_tokens": u.input_tokens,
                "cache_write_tokens": u.cache_write_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "output_tokens": u.output_tokens,
                "batch_share": 0.0,
                "cost_usd": results[arm]["cost_usd"],
            }
        )
    Console().print(_table(rows[0], rows[1], "Priced from the API's usage (standard tier)"))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from engine.cli.bench import checked_policy

    policy = checked_policy(args.policy, "demo")
    if isinstance(policy, int):
        return policy
    return _live(args, policy) if args.live else _emulated(args, policy)
