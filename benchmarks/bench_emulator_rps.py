"""Plain ``POST /v1/messages`` requests per second the emulator sustains.

Starts the emulator command (``--port 0``) in its own process, then drives it
with several client processes, each a keep-alive httpx client, for a bounded
number of requests, and prints the figure. One Python client process tops out
near 500 requests/s by itself, so a single client would measure the client. Aim: >= 500/s on
the 2-core reference machine.

    python benchmarks/bench_emulator_rps.py [--requests 5000] [--clients 4] [--stream-share 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor

import httpx
from _emulator import start_emulator


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server() -> tuple[subprocess.Popen[str], str]:
    return start_emulator()


def _body(i: int, stream: bool) -> dict[str, object]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": f"benchmark request {i % 97}: say something short"}],
    }


def _client(base_url: str, first: int, count: int, share: float) -> list[int]:
    """One load-generating process: a keep-alive httpx client posting ``count`` requests."""
    errors: list[int] = []
    headers = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for i in range(first, first + count):
            stream = share > 0 and (i % 100) < share * 100
            r = client.post("/v1/messages", json=_body(i, stream))
            if r.status_code != 200:
                errors.append(r.status_code)
    return errors


def _drive(base_url: str, total: int, clients: int, share: float) -> tuple[float, list[int]]:
    per = total // clients
    with ProcessPoolExecutor(clients) as pool:
        list(pool.map(_client, [base_url] * clients, range(clients), [5] * clients, [share] * clients))
        start = time.perf_counter()
        futures = [pool.submit(_client, base_url, n * per, per, share) for n in range(clients)]
        errors = [code for f in futures for code in f.result()]
        return time.perf_counter() - start, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--stream-share", type=float, default=0.0, help="share of streaming requests (0..1)")
    args = parser.parse_args()
    proc, base_url = _start_server()
    try:
        cpu_before = _cpu_seconds(proc.pid)
        elapsed, errors = _drive(base_url, args.requests, args.clients, args.stream_share)
        cpu_after = _cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    done = args.requests // args.clients * args.clients
    print(
        f"emulator: {done} requests, {args.clients} client processes, "
        f"stream share {args.stream_share:.0%}: {elapsed:.2f} s, {done / elapsed:.0f} requests/s, "
        f"{len(errors)} errors"
    )
    if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
        per_request = (cpu_after - cpu_before) / done
        print(
            f"server CPU: {per_request * 1e6:.0f} us per request, "
            f"{1 / per_request:.0f} requests/s per fully used core"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
