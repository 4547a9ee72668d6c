"""Describe the seeded reference workloads (the generators live in engine/bench/workloads.py).

    python benchmarks/workloads/describe.py [--scale 1.0]

Prints, per workload: calls, call sites, groups (bursts / turns), input tokens per
call (mean, min, max by the engine's estimate), the time span and latency classes,
so the sizes the benchmark claims can be checked without running it.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

from engine.bench.workloads import build_workload
from engine.providers.anthropic.tokens import canonical_json, text_tokens


def _tokens(call: object) -> int:
    messages = getattr(call, "messages", ())
    tools = getattr(call, "tools", ())
    return sum(text_tokens(str(m.content)) for m in messages) + sum(
        text_tokens(canonical_json(t)) for t in tools
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    for name in ("indexing", "agent", "retrieval", "mixed"):
        work = build_workload(name, scale=args.scale)
        sizes = [_tokens(c) for c in work.calls]
        span = max(c.at for c in work.calls) - min(c.at for c in work.calls)
        print(
            f"{name}: {len(work.calls)} calls in {len(work.groups())} groups over {span / 60:.1f} min; "
            f"input tokens/call mean {statistics.mean(sizes):.0f} (min {min(sizes)}, max {max(sizes)}); "
            f"sites {dict(Counter(c.call_site for c in work.calls))}; "
            f"latency {dict(Counter(c.latency for c in work.calls))}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
