"""When pools go: at maxRequests or after maxWait, whichever first; one pool per key."""

from __future__ import annotations

import asyncio

from engine.providers.anthropic.batches import Accumulator, split_requests
from engine.providers.anthropic.batches.client import retry_after_s


class Flushes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, list[int]]] = []

    def __call__(self, key: str, items: list[int]) -> None:
        self.seen.append((key, items))


async def test_full_pools_go_at_once_per_key() -> None:
    flushes = Flushes()
    acc: Accumulator[str, int] = Accumulator(flushes, max_requests_cap=100_000)
    for i in range(7):
        acc.add("a" if i % 2 else "b", i, max_requests=3, max_wait_s=60)
    assert flushes.seen == [("b", [0, 2, 4]), ("a", [1, 3, 5])]
    assert len(acc) == 1
    acc.flush_all()
    assert flushes.seen[-1] == ("b", [6]) and len(acc) == 0


async def test_a_pool_goes_after_its_oldest_items_wait() -> None:
    flushes = Flushes()
    acc: Accumulator[str, int] = Accumulator(flushes, max_requests_cap=100_000)
    acc.add("k", 1, max_requests=100, max_wait_s=0.05)
    acc.add("k", 2, max_requests=100, max_wait_s=5)
    await asyncio.sleep(0.2)
    assert flushes.seen == [("k", [1, 2])]


async def test_the_smallest_limit_and_the_api_cap_win() -> None:
    flushes = Flushes()
    acc: Accumulator[str, int] = Accumulator(flushes, max_requests_cap=2)
    acc.add("k", 1, max_requests=500, max_wait_s=5)
    acc.add("k", 2, max_requests=500, max_wait_s=5)
    assert flushes.seen == [("k", [1, 2])]


def test_split_by_count_and_by_bytes() -> None:
    requests = [{"custom_id": str(i), "params": {"x": "y" * 100}} for i in range(10)]
    assert [len(c) for c in split_requests(requests, max_requests=4, max_bytes=10**9)] == [4, 4, 2]
    by_size = list(split_requests(requests, max_requests=100, max_bytes=500))
    assert all(len(c) <= 2 for c in by_size) and sum(len(c) for c in by_size) == 10
    assert [r["custom_id"] for c in by_size for r in c] == [str(i) for i in range(10)], "order kept"
    huge = [{"custom_id": "h", "params": {"x": "z" * 1000}}]
    assert list(split_requests(huge, max_requests=10, max_bytes=100)) == [huge]


def test_retry_after_headers() -> None:
    class Resp:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class Err(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Resp(headers)

    assert retry_after_s(Err({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_s(Err({"retry-after": "2"})) == 2.0
    assert retry_after_s(Err({"retry-after": "soon"})) is None
    assert retry_after_s(ValueError()) is None
