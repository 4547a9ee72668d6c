"""Run the reference workloads at full size and write their results.

    python benchmarks/savings.py [--scale 1.0] [--workloads pipeshub-indexing,...] [--hit-rates 0.3,0.6,0.98]
    python benchmarks/savings.py --refloor    # floors and goals again, from the saved results and traces

For each workload: ``llm-policy bench --workload NAME --format json`` (an
in-process emulator, all four arms), which writes ``benchmarks/results/NAME.md``
and ``NAME.png``; this script also keeps the JSON (``NAME.json``) and the trace
the no-policy arm recorded (``NAME.trace.jsonl``, for ``llm-policy plan``), and
prints one summary line per workload: each arm's cost, the floor, the planner's
error and the goals. ``results/SUMMARY.md`` gathers every workload x arm x batch
hit rate in one table, with the plan/report errors and the goals.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from engine.bench.workloads import WORKLOADS as BENCH_WORKLOADS
from engine.cli import main as cli

RESULTS = Path(__file__).resolve().parent / "results"


WORKLOADS = tuple(BENCH_WORKLOADS)


def run(workload: str, scale: float, hit_rates: str) -> dict[str, object]:
    out = io.StringIO()
    began = time.perf_counter()
    args = [
        "bench",
        "--workload",
        workload,
        "--scale",
        str(scale),
        "--format",
        "json",
        "--hit-rates",
        hit_rates,
        "--results",
        str(RESULTS),
        "--trace-out",
        str(RESULTS / f"{workload}.trace.jsonl"),
    ]
    with contextlib.redirect_stdout(out):
        cli(args)
    doc: dict[str, object] = json.loads(out.getvalue())
    doc["total_wall_s"] = round(time.perf_counter() - began, 1)
    (RESULTS / f"{workload}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def summary(docs: list[dict[str, Any]]) -> str:
    """One markdown table of every workload x arm x hit rate, then errors and goals."""
    lines = [
        "# Savings benchmark: every workload, arm and batch cache hit rate",
        "",
        "Emulator billing, USD, model claude-sonnet-4-6, policy pipeshub-savings. `@q30` = the arm's "
        "batches ran with a 30% batch cache hit rate (arms that send no batches do not depend on it). "
        "`vs floor` divides by the floor at the arm's hit rate (`lower bound@q30`: batch items read "
        "30% of the time; `lower bound`: every batch read granted). `vs online floor` divides by the "
        "floor for placements that cannot see when the next call of a conversation comes (an expected "
        "cost over the pauses the trace shows; docs/savings.md step 7).",
        "",
        "| workload | calls | arm | cost USD | vs no-policy | vs floor | vs online floor |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for doc in docs:
        arms = doc["arms"]
        base = arms["no-policy"]["cost_usd"] or 1.0
        by_rate = doc.get("lower_bound_by_hit_rate") or {}
        online_by_rate = doc.get("online_lower_bound_by_hit_rate") or {}
        for name, arm in arms.items():
            rate = name.partition("@")[2]
            floor = by_rate.get(rate) or doc["oracle_lower_bound_usd"] or 1.0
            online = online_by_rate.get(rate) or doc.get("online_lower_bound_usd") or floor
            lines.append(
                f"| {doc['workload']} | {doc['calls']:,} | {name} | {arm['cost_usd']:.4f} | "
                f"{arm['cost_usd'] / base:.3f}x | {arm['cost_usd'] / floor:.3f}x | "
                f"{arm['cost_usd'] / online:.3f}x |"
            )
        lines.append(
            f"| {doc['workload']} | | lower bound | {doc['oracle_lower_bound_usd']:.4f} | | 1.000x | |"
        )
        for rate, value in by_rate.items():
            lines.append(f"| {doc['workload']} | | lower bound@{rate} | {value:.4f} | | 1.000x | |")
        if doc.get("online_lower_bound_usd"):
            online_usd = doc["online_lower_bound_usd"]
            lines.append(f"| {doc['workload']} | | online lower bound | {online_usd:.4f} | | | 1.000x |")
    lines += ["", "## Planner and report against the bill", ""]
    lines += [
        "| workload | policy run | plan on trace | plan on decision log | report |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for doc in docs:
        for name, f in (doc.get("plan") or {}).items():
            lines.append(
                f"| {doc['workload']} | {name} | {f.get('trace_error_pct', 0):+.2f}% | "
                f"{f.get('log_error_pct', 0):+.2f}% | {f.get('report_error_pct', 0):+.2f}% |"
            )
    lines += ["", "## Goals", ""]
    for doc in docs:
        for goal, figures in doc["goals"].items():
            mark = "holds" if figures["holds"] else "DOES NOT HOLD"
            extra = {k: v for k, v in figures.items() if k != "holds"}
            lines.append(f"- {doc['workload']}: {goal}: {mark} {json.dumps(extra)}")
    return "\n".join(lines) + "\n"


def refloor(workload: str) -> dict[str, Any]:
    """The saved result with its floors and goals computed again from its saved trace.

    The floor is a function of the trace alone: a change to how it is computed needs
    no new run.
    """
    from engine.bench.results import floors, goals, write_chart, write_markdown
    from engine.plan import lower_bound, online_lower_bound, read_trace

    doc: dict[str, Any] = json.loads((RESULTS / f"{workload}.json").read_text(encoding="utf-8"))
    trace = list(read_trace(RESULTS / f"{workload}.trace.jsonl"))
    rates = sorted({int(q) for name in doc["arms"] for _, _, q in [name.partition("@q")] if q})
    by_rate = floors(trace, [*rates] or [None])
    online_by_rate = floors(trace, [*rates] or [None], online=True)
    doc["oracle_lower_bound_usd"] = round(lower_bound(trace), 6)
    doc["lower_bound_by_hit_rate"] = {f"q{q}": round(f, 6) for q, f in by_rate.items() if q is not None}
    doc["online_lower_bound_usd"] = round(online_lower_bound(trace), 6)
    doc["online_lower_bound_by_hit_rate"] = {
        f"q{q}": round(f, 6) for q, f in online_by_rate.items() if q is not None
    }
    doc["goals"] = goals(
        workload,
        doc["arms"],
        by_rate if rates else doc["oracle_lower_bound_usd"],
        online_by_rate if rates else doc["online_lower_bound_usd"],
    )
    (RESULTS / f"{workload}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    write_markdown(doc, RESULTS / f"{workload}.md")
    write_chart(doc, RESULTS / f"{workload}.png")
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--hit-rates", default="0.3,0.6,0.98")
    parser.add_argument(
        "--refloor",
        action="store_true",
        help="floors, goals, tables and charts again, from the saved results and traces",
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.refloor:
        docs = [refloor(workload) for workload in args.workloads.split(",")]
        (RESULTS / "SUMMARY.md").write_text(summary(docs), encoding="utf-8")
        return 0
    docs = []
    for workload in args.workloads.split(","):
        doc = run(workload, args.scale, args.hit_rates)
        docs.append(doc)
        arms = doc["arms"]
        assert isinstance(arms, dict)
        costs = " ".join(f"{name}={a['cost_usd']:.4f}" for name, a in arms.items())
        print(
            f"{workload}: calls={doc['calls']} {costs} floor={doc['oracle_lower_bound_usd']:.4f} "
            f"plan={doc.get('plan')} goals={json.dumps(doc['goals'])} wall={doc['total_wall_s']}s"
        )
        sys.stdout.flush()
        (RESULTS / "SUMMARY.md").write_text(summary(docs), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
