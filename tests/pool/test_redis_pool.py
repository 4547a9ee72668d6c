"""The Redis pool on a real redis-server: fill, flush rules, queue limit, leases, take-over.

Several pool objects with distinct owners stand for several processes; the flush
callback plays the batch service (it journals each row as answered), so these tests
look at the pool's own promises: every pooled row is handed to exactly one flusher,
batches fill across producers, and a flusher that stops is replaced.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from engine.journal import JournalEntry, Lease, Outcome, open_journal
from engine.journal.redis import RedisJournal
from engine.pool.connect import parse_redis_url
from engine.pool.redis_pool import PoolCall, PoolLimits, RedisPool

POOL = "p1"


class Node:
    """One simulated process: a journal lease, a pool, and what it flushed."""

    def __init__(self, url: str, journal: RedisJournal, limits: PoolLimits, *, answer: bool = True) -> None:
        self.journal = journal
        self.lease = Lease.new(30)
        self.answer = answer
        self.flushed: list[list[str]] = []
        self.pool = RedisPool(
            parse_redis_url(url), owner=self.lease.owner, journal_lease_s=30,
            flush=self._flush, settle=self._settle, limits=limits,
        )  # fmt: skip
        self.settled: set[str] = set()

    async def _flush(self, _pool: str, hashes: list[str]) -> None:
        self.flushed.append(hashes)
        if self.answer:
            await self.finish(hashes)

    async def finish(self, hashes: list[str]) -> None:
        await asyncio.to_thread(self.journal.mark_submitted, hashes, f"b-{len(self.flushed)}", self.lease)
        outcomes = [Outcome(h, "succeeded", 0, result={"h": h}) for h in hashes]
        await asyncio.to_thread(self.journal.record, outcomes)

    async def _settle(self, hashes: list[str]) -> None:
        rows = await asyncio.to_thread(self.journal.get_many, hashes)
        self.settled.update(h for h, row in rows.items() if row.final)

    async def put(self, digest: str, *, max_requests: int = 1000, max_wait_s: float = 0.3) -> None:
        entry = JournalEntry(digest, digest, "fp", "http://api", "pending", params={"n": digest})
        await asyncio.to_thread(self.journal.claim, [entry], self.lease)
        self.pool.watched.add(digest)
        assert await self.pool.add(POOL, PoolCall(digest, 50, max_requests, max_wait_s, 3600.0))


async def _until(check: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _nodes(url: str, n: int, limits: PoolLimits, **kw: bool) -> tuple[RedisJournal, list[Node]]:
    journal = open_journal(url)
    assert isinstance(journal, RedisJournal)
    return journal, [Node(url, journal, limits, **kw) for _ in range(n)]


def _taken(nodes: list[Node]) -> Counter[str]:
    return Counter(h for node in nodes for batch in node.flushed for h in batch)


async def _close(nodes: list[Node]) -> None:
    await asyncio.gather(*(n.pool.aclose() for n in nodes))


async def test_calls_of_several_processes_fill_one_batch(redis_url: str) -> None:
    _, nodes = _nodes(redis_url, 3, PoolLimits(lease_s=2, sweep_s=0.5))
    try:
        digests = [f"h{i:03d}" for i in range(30)]
        await asyncio.gather(*(nodes[i % 3].put(d, max_wait_s=1.0) for i, d in enumerate(digests)))
        await _until(lambda: all(set(digests) & n.pool.watched <= n.settled for n in nodes))
        batches = [b for n in nodes for b in n.flushed]
        assert [len(b) for b in batches] == [30]  # one flusher, one batch, every producer's calls in it
        assert _taken(nodes) == Counter(digests)
    finally:
        await _close(nodes)


async def test_smallest_max_requests_bounds_each_batch(redis_url: str) -> None:
    _, nodes = _nodes(redis_url, 2, PoolLimits(lease_s=2, sweep_s=0.5))
    try:
        digests = [f"m{i:03d}" for i in range(20)]
        for i, d in enumerate(digests):
            await nodes[i % 2].put(d, max_requests=8, max_wait_s=0.5)
        await _until(lambda: sum(_taken(nodes).values()) == 20)
        sizes = [len(b) for n in nodes for b in n.flushed]
        assert max(sizes) <= 8 and sorted(sizes)[-2:] == [8, 8]
        assert _taken(nodes) == Counter(digests)
    finally:
        await _close(nodes)


async def test_queue_limit_holds_calls_until_the_queue_drains(redis_url: str) -> None:
    limits = PoolLimits(lease_s=2, sweep_s=0.5, queue_max_requests=5)
    _, nodes = _nodes(redis_url, 2, limits, answer=False)
    try:
        digests = [f"q{i:03d}" for i in range(12)]
        for i, d in enumerate(digests):
            await nodes[i % 2].put(d, max_wait_s=0.1)
        await _until(lambda: sum(_taken(nodes).values()) == 5)
        await asyncio.sleep(1.0)
        assert sum(_taken(nodes).values()) == 5  # the queue is full: nothing more goes
        leader = next(n for n in nodes if n.flushed)
        await leader.finish(leader.flushed[0])  # those five end: room for five more
        await _until(lambda: sum(_taken(nodes).values()) == 10)
        assert max(_taken(nodes).values()) == 1
    finally:
        await _close(nodes)


async def test_flusher_that_stops_is_replaced_and_nothing_is_taken_twice(redis_url: str) -> None:
    limits = PoolLimits(lease_s=1.0, sweep_s=0.5)
    _, nodes = _nodes(redis_url, 2, limits)
    first, second = nodes
    try:
        await first.put("k000", max_wait_s=30.0)  # first leads and buffers; nothing is due for 30 s
        await _until(lambda: first.pool._flushers and POOL in first.pool._flushers)
        for i in range(1, 6):
            await first.put(f"k{i:03d}", max_wait_s=30.0)
        # the leader dies before its flush: its tasks stop, its lease is not released
        first.pool._closed = True  # stops at its next step, as a killed process would
        for task in first.pool._flushers.values():
            task.cancel()
        await asyncio.wait(first.pool._flushers.values(), timeout=5)
        await second.put("k900", max_wait_s=0.2)  # second now serves the pool and takes over
        await _until(lambda: sum(_taken(nodes).values()) == 7)
        assert first.flushed == []  # the dead leader's read entries were claimed (XAUTOCLAIM)
        consumers = await second.pool.redis.xinfo_consumers(second.pool._key(POOL, "s"), "flushers")
        assert [c["name"] for c in consumers] == [second.lease.owner.encode()]  # the dead one's name dropped
        assert max(_taken(nodes).values()) == 1
        assert set(_taken(nodes)) == {*(f"k{i:03d}" for i in range(6)), "k900"}
    finally:
        await _close(nodes)


async def test_a_flusher_without_the_lease_takes_nothing(redis_url: str) -> None:
    journal, [node] = _nodes(redis_url, 1, PoolLimits(lease_s=30, sweep_s=0.5))
    try:
        await node.put("x1", max_wait_s=60.0)
        pool = node.pool
        reply = await pool._script(
            "POOL_TAKE",
            [pool._key(POOL, "s"), pool._key(POOL, "lease")],
            [pool.prefix, "0", "someone-else", "someone-else", "9", POOL, 10, "0", "0-1", "x1"],
        )
        assert reply == -1
        row = journal.get_many(["x1"])["x1"]
        assert row.owner == f"pool:{POOL}" and row.state == "pending"
    finally:
        await _close([node])


@pytest.mark.parametrize("state", ["submitted", "succeeded"])
async def test_a_row_not_owned_by_the_claimant_is_not_pooled(redis_url: str, state: str) -> None:
    journal, [node] = _nodes(redis_url, 1, PoolLimits(lease_s=30))
    try:
        entry = JournalEntry("y1", "y1", "fp", "http://api", "pending", params={})
        journal.claim([entry], node.lease)
        journal.mark_submitted(["y1"], "b0", node.lease)
        if state == "succeeded":
            journal.record([Outcome("y1", "succeeded", 0, result={})])
        assert not await node.pool.add(POOL, PoolCall("y1", 1, 10, 1.0, 60.0))
    finally:
        await _close([node])


async def test_explicit_batches_count_in_the_queue_until_they_end(redis_url: str) -> None:
    journal, [node] = _nodes(redis_url, 1, PoolLimits(lease_s=30))
    try:
        entries = [JournalEntry(f"e{i}", f"e{i}", "fp", "http://api", "pending", params={}) for i in range(3)]
        journal.claim(entries, node.lease)
        journal.mark_submitted(["e0", "e1", "e2"], "b-explicit", node.lease)
        queue = journal.prefix + "q:fp"
        assert journal.redis.zcard(queue) == 3
        journal.record([Outcome("e0", "succeeded", 0, result={}), Outcome("e1", "failed", 1, error="x")])
        assert journal.redis.zcard(queue) == 1
    finally:
        await _close([node])


async def test_overlapping_closes_both_return_and_give_the_lease_up(redis_url: str) -> None:
    """The service may close a loop's worker from that loop and from another at once."""
    _, [node] = _nodes(redis_url, 1, PoolLimits(lease_s=30, sweep_s=0.5))
    await node.put("c1", max_wait_s=0.1)
    await _until(lambda: node.settled == {"c1"})
    lease = node.pool._key(POOL, "lease")
    assert node.journal.redis.get(lease) == node.lease.owner.encode()  # it led the pool
    first = asyncio.get_running_loop().create_task(node.pool.aclose())
    while node.journal.redis.get(lease) is not None:  # the second starts once the first gave the lease up
        await asyncio.sleep(0)
    results = await asyncio.gather(first, node.pool.aclose(), return_exceptions=True)
    assert results == [None, None] and node.pool._redis is None, (results, node.pool._redis)
