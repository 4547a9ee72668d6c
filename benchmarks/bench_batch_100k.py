"""A 100,000-request explicit batch end to end through the engine's batch service.

Starts ``llm-policy emulator --port 0`` in its own process, then, in this process,
sends ``--requests`` requests with ``BatchService.submit_many`` (journal on disk,
split at the API limits, polled, results streamed into the journal and back to
the caller in input order). Checks every answer is its own and the emulator billed
each request once at the batch tier. Prints the wall time of each phase and the
peak resident memory of the client (this process) and of the server.

    python benchmarks/bench_batch_100k.py [--requests 100000] [--batch-latency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
from _emulator import start_emulator

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchService, open_journal

MODEL = "claude-sonnet-4-6"


def start_server(batch_latency: float) -> tuple[subprocess.Popen[str], str]:
    return start_emulator("--batch-latency", str(batch_latency))


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of ``pid``, or of this process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory: VmHWM of ``pid``, or this process's ru_maxrss."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(base_url: str, count: int, journal_url: str) -> dict[str, float]:
    phases: dict[str, float] = {}
    started = time.perf_counter()
    params = [
        {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"item {i}"}]}
        for i in range(count)
    ]
    phases["build requests"] = time.perf_counter() - started
    service = BatchService(open_journal(journal_url), poll_interval=0.5, max_poll_interval=2.0)
    async with anthropic.AsyncAnthropic(api_key="sk-bench", base_url=base_url, timeout=600) as client:
        t = time.perf_counter()
        answers = await service.submit_many(params, BatchPlan("explicit"), client)
        phases["submit + wait + stream results"] = time.perf_counter() - t
        phases["batches"] = service.batches_created
    t = time.perf_counter()
    for i, message in enumerate(answers):
        assert isinstance(message, anthropic.types.Message), message
        block = message.content[0]
        assert block.type == "text" and block.text.startswith(f"echo: item {i} "), (i, block)
    phases["check answers"] = time.perf_counter() - t
    await service.aclose()
    phases["total"] = time.perf_counter() - started
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--batch-latency", type=float, default=1.0)
    args = parser.parse_args()
    proc, base_url = start_server(args.batch_latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            phases = asyncio.run(run(base_url, args.requests, f"sqlite:///{tmp}/state.db"))
            journal_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        bill: dict[str, Any] = httpx.get(f"{base_url}/_emulator/billing").json()
        server_mb = peak_rss_mb(proc.pid)
        server_cpu = cpu_s(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"requests: {args.requests:,}  batches: {int(phases.pop('batches'))}")
    for name, seconds in phases.items():
        print(f"  {name:<32} {seconds:8.2f} s")
    print(
        f"peak memory: client {peak_rss_mb():.0f} MB, server {server_mb:.0f} MB; journal {journal_mb:.1f} MB"
    )
    print(f"cpu: client {cpu_s():.1f} s, server {server_cpu:.1f} s")
    print(f"billed: {bill['requests_batch']:,} at batch tier, {bill['requests_standard']:,} standard, "
          f"${bill['cost_usd']:.4f}")  # fmt: skip
    ok = bill["requests_batch"] == args.requests and bill["requests_standard"] == 0
    print("each request paid once at the batch tier" if ok else "BILLING MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
