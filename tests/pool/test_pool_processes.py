"""Several processes pooling into shared batches on a real Redis, against the emulator.

Invariant in every scenario: every caller of a surviving process is answered (its own
answer), every call is billed at most once (the emulator's request log), and every row
the journal accepted ends final once a replica picks up what dead ones left.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import realservers
import redis
from procs import answers, billed, finish_leftovers, spawn

from engine.emulator.server import run_emulator

LEASE_S = 2.0
CHAOS_RUNS = int(os.environ.get("POOL_CHAOS_RUNS", "20"))


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    with run_emulator(requests_log_size=1_000_000, batch_latency_s=0.3) as emulator:
        yield emulator


@pytest.fixture
def fresh(emu: Any) -> Any:
    emu.state.reset()
    return emu


def _settings(emu: Any, url: str, proc: int, **extra: Any) -> dict[str, Any]:
    base = {"base_url": emu.base_url, "journal": url, "proc": proc, "loops": 1, "concurrency": 4,
            "rounds": 2, "max_wait": "1s", "lease_s": LEASE_S}  # fmt: skip
    return {**base, **extra}


def _ns_url(server: Any) -> str:
    return f"{server.url}?namespace=t-{uuid.uuid4().hex[:10]}"


def test_processes_and_loops_pool_into_shared_batches(fresh: Any, redis_server: Any) -> None:
    url = _ns_url(redis_server)
    procs = [spawn(_settings(fresh, url, p, loops=2, concurrency=4, rounds=2)) for p in range(3)]
    lines = [line for proc in procs for line in answers(proc)]
    calls = [line for line in lines if "id" in line]
    assert len(calls) == 3 * 2 * 4 * 2 and all(c["ok"] for c in calls), [c for c in calls if not c["ok"]]
    assert set(billed(fresh.state).values()) == {1} and len(billed(fresh.state)) == len(calls)
    by_batch: dict[str, set[str]] = {}
    for c in calls:
        by_batch.setdefault(c["batch"], set()).add(c["id"].split("-")[0])
    assert max(len(p) for p in by_batch.values()) >= 2, "no batch mixed processes"
    assert len(by_batch) < len(calls) / 4


def test_a_redelivered_request_on_another_process_joins_it(fresh: Any, redis_server: Any) -> None:
    url = _ns_url(redis_server)
    same = {"0-0-0": "redelivered-1"}
    first = spawn(_settings(fresh, url, 0, concurrency=1, rounds=1, ids=same, max_wait="3s"))
    time.sleep(1.0)
    second = spawn(_settings(fresh, url, 1, concurrency=1, rounds=1, ids=same, max_wait="3s"))
    got = [c for proc in (first, second) for c in answers(proc) if "id" in c]
    assert [c["id"] for c in got] == ["redelivered-1", "redelivered-1"] and all(c["ok"] for c in got)
    assert billed(fresh.state)["redelivered-1"] == 1


def _flusher_pids(url: str) -> set[int]:
    client = redis.Redis.from_url(url.split("?")[0])
    namespace = url.split("namespace=")[1]
    pids = set()
    for key in client.scan_iter(match=f"{{{namespace}}}:p:*:lease"):
        owner = client.get(key)
        if owner:
            pids.add(int(owner.decode().split("-")[0]))
    client.close()
    return pids


def _kill_flusher_run(emu: Any, server: Any, seed: int) -> dict[str, int]:
    """Three producers; the flusher is killed with SIGKILL at a random moment."""
    rng = random.Random(seed)
    emu.state.reset()
    url = _ns_url(server)
    procs = {p: spawn(_settings(emu, url, p, concurrency=6, rounds=3)) for p in range(3)}
    pids = {proc.pid: p for p, proc in procs.items()}
    deadline = time.monotonic() + 90
    # of 54 calls (18 a round): billed up to 34, a third round is still to come, so a flusher is
    # alive to kill, reading, sending or polling, in any round
    target = rng.randint(0, 34)
    while not (_flusher_pids(url) and sum(billed(emu.state).values()) >= target):
        assert time.monotonic() < deadline, "the producers did not get going"
        time.sleep(0.02)
    killed = None
    while killed is None and time.monotonic() < deadline:
        leaders = _flusher_pids(url) & set(pids)
        if leaders:
            killed = pids[leaders.pop()]
            os.kill(procs[killed].pid, signal.SIGKILL)
        else:
            time.sleep(0.05)
    assert killed is not None, "no flusher to kill"
    lines = {p: answers(proc) for p, proc in procs.items()}
    for p, got in lines.items():
        calls = [c for c in got if "id" in c]
        assert all(c["ok"] for c in calls), [c for c in calls if not c["ok"]]
        if p != killed:
            assert len(calls) == 6 * 3, f"process {p} got {len(calls)} answers"
    counts = asyncio.run(finish_leftovers(url, emu.base_url, lease_s=LEASE_S))
    bill = billed(emu.state)
    twice = {k: n for k, n in bill.items() if n > 1}
    assert not twice, f"billed twice: {twice}"
    survivors = {c["id"] for p, got in lines.items() if p != killed for c in got if "id" in c}
    assert survivors <= set(bill)
    return {"killed_answers": sum(1 for c in lines[killed] if "id" in c), **counts}


def test_killing_the_flusher_mid_batch_loses_nothing_and_pays_once(fresh: Any, redis_server: Any) -> None:
    for seed in range(2):
        _kill_flusher_run(fresh, redis_server, seed)


@pytest.mark.chaos
@pytest.mark.parametrize("seed", range(CHAOS_RUNS))
def test_killing_the_flusher_at_random_moments_full_count(emu: Any, redis_server: Any, seed: int) -> None:
    result = _kill_flusher_run(emu, redis_server, 100 + seed)
    print(f"\nkill -9 of the flusher, run {seed}: 0 lost, 0 billed twice; {result}")


def test_redis_restart_mid_run_answers_everyone_and_pays_once(fresh: Any) -> None:
    server = realservers.start_redis()
    try:
        url = _ns_url(server)
        procs = [spawn(_settings(fresh, url, p, concurrency=4, rounds=4)) for p in range(2)]
        time.sleep(2.0)
        server.restart()
        calls = [c for proc in procs for c in answers(proc) if "id" in c]
        assert len(calls) == 2 * 4 * 4 and all(c["ok"] for c in calls), [c for c in calls if not c["ok"]]
        bill = billed(fresh.state)
        assert Counter(bill.values()) == Counter({1: len(calls)})
    finally:
        server.close()
