"""A 100,000-request Message Batch through the official SDK: wall time and server memory.

Starts ``llm-policy emulator --port 0`` in its own process, then with the official
``anthropic`` SDK: creates one batch of ``--requests`` requests, polls it until it
ends, and streams its results back with ``messages.batches.results()``, checking
that every ``custom_id`` comes back exactly once. Prints the wall time of each
phase and the server's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``).
Aim: the server stays under 1 GB.

    python benchmarks/bench_emulator_batch.py [--requests 100000] [--max-tokens 16] [--batch-latency 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import anthropic
import httpx
from _emulator import start_emulator

MODEL = "claude-sonnet-4-6"


def _start_server(batch_latency: float) -> tuple[subprocess.Popen[str], str]:
    return start_emulator("--batch-latency", str(batch_latency))


def _memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` / ``VmHWM`` (peak) of ``pid`` in kB."""
    figures: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


def _requests(n: int, max_tokens: int) -> list[dict[str, Any]]:
    shared = "You are a careful assistant for document extraction. " * 20
    return [
        {
            "custom_id": f"req-{i:06d}",
            "params": {
                "model": MODEL,
                "max_tokens": max_tokens,
                "system": shared,
                "messages": [{"role": "user", "content": f"extract the fields of document number {i}"}],
            },
        }
        for i in range(n)
    ]


def _wait_until_ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.5)


def _stream_results(client: anthropic.Anthropic, batch_id: str, expected: set[str]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    seen: set[str] = set()
    for line in client.messages.batches.results(batch_id):
        if line.custom_id in seen or line.custom_id not in expected:
            raise SystemExit(f"unexpected or repeated custom_id {line.custom_id!r}")
        seen.add(line.custom_id)
        kinds[line.result.type] += 1
    if seen != expected:
        raise SystemExit(f"{len(expected - seen)} custom_ids missing from the results")
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-latency", type=float, default=1.0)
    args = parser.parse_args()

    proc, base_url = _start_server(args.batch_latency)
    try:
        client = anthropic.Anthropic(base_url=base_url, api_key="bench", timeout=600, max_retries=0)
        requests = _requests(args.requests, args.max_tokens)
        expected = {r["custom_id"] for r in requests}
        print(f"server pid {proc.pid}, {len(requests)} requests, idle memory {_memory_kb(proc.pid)}")

        t0 = time.perf_counter()
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        t_create = time.perf_counter()
        del requests
        batch = _wait_until_ended(client, batch.id)
        t_ended = time.perf_counter()
        kinds = _stream_results(client, batch.id, expected)
        t_results = time.perf_counter()

        memory = _memory_kb(proc.pid)
        billing = httpx.get(f"{base_url}/_emulator/billing").json()
        print(f"create (SDK serialize + upload + server intake): {t_create - t0:8.2f} s")
        print(f"until ended (incl. {args.batch_latency} s batch latency): {t_ended - t_create:8.2f} s")
        print(f"results streamed and checked:                {t_results - t_ended:8.2f} s")
        print(f"total wall time:                             {t_results - t0:8.2f} s")
        print(f"request_counts: {batch.request_counts.model_dump()}  result types: {dict(kinds)}")
        print(f"billing: requests_batch={billing.get('requests_batch')} cost_usd={billing.get('cost_usd')}")
        print(f"server peak RSS (VmHWM): {memory['VmHWM'] / 1024:8.1f} MB (limit 1024 MB)")
        print(f"server RSS now:          {memory['VmRSS'] / 1024:8.1f} MB")
        ok = memory["VmHWM"] < 1024 * 1024 and sum(kinds.values()) == args.requests
        print("OK" if ok else "FAILED: over 1 GB or results incomplete")
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
