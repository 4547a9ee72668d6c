"""Batch fill and per-call wait: the Redis pool across processes vs the in-process pool.

PipesHub's indexing replica holds at most 24 LLM calls in flight, so a pool inside one
process never holds more than 24. This starts the emulator (its own process) and a
``redis-server`` (the Debian package, on a free port), then for 1, 2, 4 and 8 producer
processes, each with ``--concurrency`` callers making ``--rounds`` pooled calls one after
another (``tests/pool/pool_child.py``, the engine's real batch service and SDK):

- ``redis``: every process on one Redis journal (``redis://``), pooling together;
- ``in-process``: each process on a SQLite journal of its own, pooling alone.

It reports, per arm, the batches' sizes (from the batch id each answer carries) and
each call's wait (call to answer), checks every answer is its own and billed once,
then measures Redis memory per pending call (``INFO memory`` before and after 10,000
calls are pooled and left waiting).

    python benchmarks/bench_redis_pool.py [--procs 1,2,4,8] [--concurrency 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _emulator import start_emulator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "pool")]

import realservers  # noqa: E402  (the tests' real-server helper: one way to run redis-server)
from procs import answers, spawn  # noqa: E402

from engine.journal import JournalEntry, Lease, open_journal  # noqa: E402
from engine.pool.connect import parse_redis_url  # noqa: E402
from engine.pool.redis_pool import PoolCall, PoolLimits, RedisPool  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def run_arm(arm: str, procs: int, args: argparse.Namespace, base_url: str, redis_url: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    namespace = f"bench-{arm}-{procs}-{int(time.time() * 1000)}"
    start_at = time.time() + 3.0 + 1.0 * procs  # let every producer import and connect first
    children = []
    for p in range(procs):
        journal = f"{redis_url}?namespace={namespace}" if arm == "redis" else f"sqlite:///{tmp}/p{p}.db"
        children.append(
            spawn(
                {
                    "base_url": base_url,
                    "journal": journal,
                    "proc": p,
                    "loops": 1,
                    "concurrency": args.concurrency,
                    "rounds": args.rounds,
                    "max_requests": 1000,
                    "max_wait": f"{args.max_wait}s",
                    "lease_s": 10.0,
                    "start_at": start_at,
                }
            )
        )
    calls = [c for child in children for c in answers(child, timeout=600) if "id" in c]
    bad = [c for c in calls if not c.get("ok")]
    if bad or len(calls) != procs * args.concurrency * args.rounds:
        raise SystemExit(f"{arm} x{procs}: {len(calls)} answers, {len(bad)} wrong: {bad[:3]}")
    sizes = sorted(Counter(c["batch"] for c in calls).values(), reverse=True)
    waits = sorted(c["wait_s"] for c in calls)
    return {
        "arm": arm, "processes": procs, "calls": len(calls), "batches": len(sizes),
        "batch_max": sizes[0], "batch_median": statistics.median(sizes),
        "batch_mean": len(calls) / len(sizes),
        "wait_median_s": statistics.median(waits), "wait_p95_s": waits[int(0.95 * (len(waits) - 1))],
    }  # fmt: skip


def billed_once(base_url: str, expected: int) -> None:
    bill = httpx.get(f"{base_url}/_emulator/billing").json()
    paid = bill["requests_batch"] + bill["requests_standard"]
    if paid != expected:
        raise SystemExit(f"the emulator billed {paid} requests for {expected} calls")


async def pending_bytes(redis_url: str, count: int, prompt_chars: int) -> float:
    """Redis memory per call pooled and waiting (row, stream entry, indexes), in bytes."""
    url = f"{redis_url}?namespace=mem-{prompt_chars}"
    journal = open_journal(url)
    lease = Lease.new(3600)
    pool = RedisPool(
        parse_redis_url(url), owner=lease.owner, journal_lease_s=3600,
        flush=_never, settle=_never, limits=PoolLimits(lease_s=3600),
    )  # fmt: skip
    client = journal.redis  # type: ignore[attr-defined]
    client.execute_command("MEMORY", "PURGE")
    before = int(client.info("memory")["used_memory"])
    text = ("lorem ipsum " * (prompt_chars // 12 + 1))[:prompt_chars]
    for start in range(0, count, 500):
        entries = [
            JournalEntry(
                f"{prompt_chars:06d}{i:058d}",
                f"{i:064d}",
                "0123456789abcdef",
                "https://api.anthropic.com",
                "pending",
                call_site="indexing.doc_extraction.fallback_summary",
                params={
                    "model": "claude-sonnet-4-6",
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": f"{i} {text}"}],
                },
            )
            for i in range(start, min(count, start + 500))
        ]
        await asyncio.to_thread(journal.claim, entries, lease)
        for e in entries:
            await pool.add("bench", PoolCall(e.request_hash, prompt_chars + 120, 100_000, 86_400.0, 86_400.0))
    after = int(client.info("memory")["used_memory"])
    await pool.aclose()
    return (after - before) / count


async def _never(*_args: Any) -> None:
    return None


def table(rows: list[dict[str, Any]]) -> str:
    head = "| pool | processes | calls | batches | largest batch | median batch | median wait | p95 wait |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['processes']} | {r['calls']} | {r['batches']} | {r['batch_max']} | "
            f"{r['batch_median']:g} | {r['wait_median_s']:.2f} s | {r['wait_p95_s']:.2f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-wait", type=int, default=5, help="the pool's maxWait, whole seconds")
    parser.add_argument("--batch-latency", type=float, default=0.5)
    parser.add_argument("--pending", type=int, default=10_000, help="calls for the memory figure")
    args = parser.parse_args()
    emulator, base_url = start_emulator(
        "--batch-latency", str(args.batch_latency), "--requests-log-size", "100000"
    )
    server = realservers.start_redis()
    rows: list[dict[str, Any]] = []
    try:
        for procs in (int(p) for p in args.procs.split(",")):
            for arm in ("in-process", "redis"):
                httpx.post(f"{base_url}/_emulator/reset")
                row = run_arm(arm, procs, args, base_url, server.url)
                billed_once(base_url, row["calls"])
                rows.append(row)
                print(json.dumps(row), flush=True)
        memory = {
            str(chars): round(asyncio.run(pending_bytes(server.url, args.pending, chars)))
            for chars in (100, 2000)
        }
    finally:
        server.close()
        emulator.kill()
    report = table(rows) + "\n\nRedis memory per pending call (bytes), by prompt length in characters: "
    report += ", ".join(f"{k} chars: {v} B" for k, v in memory.items())
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redis_pool.json").write_text(json.dumps({"rows": rows, "memory": memory}, indent=2) + "\n")
    (RESULTS / "redis_pool.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
