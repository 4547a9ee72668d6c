"""What not knowing when a conversation resumes costs: the policy, and the policy told each pause.

    python benchmarks/pause_oracle.py [WORKLOAD ...]   # default: the four conversation workloads
    python benchmarks/pause_oracle.py --seeds 101,102,103 [WORKLOAD ...]   # other draws of the same workloads

The floor (docs/savings.md) is clairvoyant: it puts a 1h write exactly where a
pause of more than 5 minutes follows. The engine cannot: it weighs a checkpoint
against the share of its call site's follow-ups that came after a pause. This
replays each saved trace (``benchmarks/results/NAME.trace.jsonl``, written by
``savings.py``) under the shipped policy twice with ``plan``'s replay (the
emulator's billing): as the engine runs, and with every request told its own next
follow gap (its weighed share of pauses is then 99.9% or 0.1%). The distance
between the two is the price of not knowing the future; the distance from the
second to the floor is what the rule itself leaves. The online floor
(docs/savings.md, step 7) is the least any policy that cannot see the next pause
expects to pay.

``--seeds`` records each workload again under other seeds (the no-policy arm
through the emulator, about 15 s a trace, into a temporary directory) and
replays those traces the same way: how far one run's figures move with the draw
of pauses and conversation lengths.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from engine.cli import main as cli
from engine.compile import compile_policy
from engine.plan import (
    TraceRecord,
    lower_bound,
    online_lower_bound,
    policy_placer,
    read_trace,
    replay,
    summarize,
)
from engine.plan._online import follow_ups
from engine.policy import load_policy
from engine.providers.anthropic.caching import BreakpointAllocator
from engine.providers.anthropic.caching._choose import MIN_PAUSES
from engine.providers.anthropic.caching._entries import CacheBook, Standing

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "examples" / "pipeshub-savings.yaml"
CONVERSATIONS = ("pipeshub-agent", "agent", "agent-pauses-30m", "agent-pauses-2h")


def next_gaps(records: list[TraceRecord]) -> dict[float, float]:
    """Per request time: how long until the next request that carries its whole prompt on."""
    ordered = sorted(records, key=lambda r: r.ts)
    return {ordered[j].ts: ordered[i].ts - ordered[j].ts for i, j in follow_ups(ordered).items()}


TOLD = 1000  #: copies of the next gap a told request sees: its weighed share of pauses is then 0.1% or 99.9%


class _Told(CacheBook):
    """The engine's book, except that each request's follow gaps are its own next one."""

    def __init__(self, gaps: dict[float, float]) -> None:
        super().__init__()
        self._gaps = gaps

    def standing(self, call_site: str, digests: list[bytes], now: float) -> Standing:  # type: ignore[override]
        known = super().standing(call_site, digests, now)
        return replace(known, follows=(self._gaps.get(now, 0.0),) * max(TOLD, MIN_PAUSES))


def cost(records: list[TraceRecord], told: bool) -> float:
    placer = policy_placer(compile_policy(load_policy(str(POLICY))))
    if told:
        allocator = BreakpointAllocator()
        allocator._book = _Told(next_gaps(records))  # the one thing this replay changes
        placer._allocators["direct"] = allocator  # type: ignore[attr-defined]
    return summarize(replay(records, placer)).cost_usd


def traces(workloads: list[str], seeds: list[int]) -> Iterator[tuple[str, list[TraceRecord]]]:
    """The saved trace of each workload, or with ``seeds``, each workload recorded again per seed."""
    if not seeds:
        for name in workloads:
            yield name, list(read_trace(ROOT / "benchmarks" / "results" / f"{name}.trace.jsonl"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name in workloads:
            for seed in seeds:
                path = Path(tmp) / f"{name}-{seed}.trace.jsonl"
                args = ["bench", "--workload", name, "--seed", str(seed), "--arms", "no-policy"]
                with contextlib.redirect_stdout(io.StringIO()):
                    cli([*args, "--trace-out", str(path)])
                yield f"{name} (seed {seed})", list(read_trace(path))


def main(workloads: list[str], seeds: list[int]) -> None:
    print(
        "| workload | policy | policy told each pause | floor | online floor | policy / floor "
        "| told / floor | policy / online floor |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, records in traces(workloads, seeds):
        floor, online = lower_bound(records), online_lower_bound(records)
        plain, told = cost(records, False), cost(records, True)
        print(
            f"| {name} | {plain:.4f} | {told:.4f} | {floor:.4f} | {online:.4f} | {plain / floor:.3f} "
            f"| {told / floor:.3f} | {plain / online:.3f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workloads", nargs="*", default=list(CONVERSATIONS))
    parser.add_argument("--seeds", default="", help="comma-separated workload seeds to record and replay")
    opts = parser.parse_args()
    main(opts.workloads, [int(s) for s in opts.seeds.split(",") if s])
