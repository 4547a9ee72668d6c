"""The journal and the pool on a real Redis Cluster (one node holding every slot), through
redis-py's RedisCluster: every script's keys share the namespace's slot, and the answers
come back across the cluster client's pub/sub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import realservers
import redis
import redis.asyncio.cluster

from engine.journal import JournalEntry, Lease, Outcome, open_journal
from engine.pool.connect import parse_redis_url
from engine.pool.redis_pool import PoolCall, PoolLimits, RedisPool


def _cluster_argv(port: int, workdir: Path, bus_port: int) -> list[str]:
    return [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--save", "", "--appendonly", "no", "--protected-mode", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", str(workdir / "nodes.conf"),
        "--cluster-port", str(bus_port),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    why = realservers.missing_binary("redis")
    if why:
        pytest.skip(why)
    server = realservers.RealServer("redis", _cluster_argv, extra_ports=(realservers.free_port(),))
    server.start()
    try:
        node = redis.Redis(host="127.0.0.1", port=server.port)
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.1)
        node.close()
        yield f"redis://127.0.0.1:{server.port}/?cluster=true&namespace=cluster-test"
    finally:
        server.close()


def test_journal_round_trip_on_a_cluster(cluster_url: str) -> None:
    journal = open_journal(cluster_url)
    lease = Lease.new(30)
    journal.claim([JournalEntry("c1", "c1", "fp", "http://api", "pending", params={"n": 1})], lease)
    journal.mark_sending(["c1"], lease)
    journal.mark_submitted(["c1"], "b1", lease)
    assert [e.request_hash for e in journal.items_in_batch("b1")] == ["c1"]
    journal.record([Outcome("c1", "succeeded", 0, result={"ok": True})])
    assert journal.get_many(["c1"])["c1"].result == {"ok": True}
    journal.close()


async def test_pool_takes_and_wakes_on_a_cluster(cluster_url: str) -> None:
    journal = open_journal(cluster_url)
    lease = Lease.new(30)
    taken: list[str] = []
    woken: list[str] = []

    # redis-py's asyncio cluster client has pub/sub from version 6 on; before, the pool sweeps
    pubsub = hasattr(redis.asyncio.cluster.RedisCluster, "pubsub")

    async def flush(_pool: str, hashes: list[str]) -> None:
        taken.extend(hashes)
        await asyncio.to_thread(journal.record, [Outcome(h, "succeeded", 0, result={}) for h in hashes])

    async def settle(hashes: list[str]) -> None:
        rows = await asyncio.to_thread(journal.get_many, hashes)
        woken.extend(h for h, row in rows.items() if row.final)

    pool = RedisPool(
        parse_redis_url(cluster_url), owner=lease.owner, journal_lease_s=30, flush=flush, settle=settle,
        limits=PoolLimits(lease_s=2, sweep_s=30 if pubsub else 0.5),
    )  # fmt: skip
    try:
        digests = [f"k{i}" for i in range(5)]
        entries = [JournalEntry(d, d, "fp", "http://api", "pending", params={}) for d in digests]
        await asyncio.to_thread(journal.claim, entries, lease)
        pool.watched.update(digests)
        for d in digests:
            assert await pool.add("cp", PoolCall(d, 10, 100, 0.2, 60.0))
        deadline = asyncio.get_running_loop().time() + 20
        while set(woken) != set(digests):  # with pub/sub, woken by the done channel: no sweep for 30 s
            assert asyncio.get_running_loop().time() < deadline, (taken, woken)
            await asyncio.sleep(0.05)
        assert sorted(taken) == digests
    finally:
        await pool.aclose()
        journal.close()
