"""Run the three reference workloads at full size and write their results.

    python benchmarks/savings.py [--scale 1.0] [--workloads indexing,agent,retrieval]

For each workload: ``llm-policy bench --workload NAME --format json`` (an
in-process emulator, all four arms), which writes ``benchmarks/results/NAME.md``
and ``NAME.png``; this script also keeps the JSON (``NAME.json``) and the trace
the no-policy arm recorded (``NAME.trace.jsonl``, for ``llm-policy plan``), and
prints one summary line per workload: each arm's cost, the floor, the planner's
error and the goals.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

from engine.cli import main as cli

RESULTS = Path(__file__).resolve().parent / "results"


def run(workload: str, scale: float) -> dict[str, object]:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workloads", default="indexing,agent,retrieval")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for workload in args.workloads.split(","):
        doc = run(workload, args.scale)
        arms = doc["arms"]
        assert isinstance(arms, dict)
        costs = " ".join(f"{name}={a['cost_usd']:.4f}" for name, a in arms.items())
        print(
            f"{workload}: calls={doc['calls']} {costs} floor={doc['oracle_lower_bound_usd']:.4f} "
            f"plan={doc.get('plan')} goals={json.dumps(doc['goals'])} wall={doc['total_wall_s']}s"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
