"""Pools of single requests waiting to become one batch.

``accumulate`` rules pool single async calls: a pool is handed over when it holds
``maxRequests`` items or when its oldest item has waited ``maxWait``, whichever
comes first. There is one pool per key (the service keys by credential
fingerprint and endpoint, so a batch never mixes tenants; it may mix models).

The accumulator only decides *when*; what a flush does is the ``flush`` callback's
business, which keeps this logic small and testable without a network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Accumulator"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass
class _Pool(Generic[T]):
    items: list[T] = field(default_factory=list)
    limit: int = 0
    deadline: float = float("inf")
    timer: asyncio.TimerHandle | None = None
    opened: float = field(default_factory=time.monotonic)


class Accumulator(Generic[K, T]):
    """Collects items per key and calls ``flush(key, items)`` when a pool is full or due.

    Must be used from one event loop (the one that runs the timers).
    """

    def __init__(self, flush: Callable[[K, list[T]], None], *, max_requests_cap: int) -> None:
        self._flush = flush
        self._cap = max_requests_cap
        self._pools: dict[K, _Pool[T]] = {}

    def __len__(self) -> int:
        return sum(len(p.items) for p in list(self._pools.values()))

    def oldest_age(self) -> float:
        """Seconds the oldest pooled item has waited (0 when none waits); safe from any thread."""
        opened = [p.opened for p in list(self._pools.values())]
        return time.monotonic() - min(opened) if opened else 0.0

    def add(self, key: K, item: T, *, max_requests: int, max_wait_s: float) -> None:
        """Pool ``item``; the pool goes when it reaches the smallest ``max_requests`` among its items."""
        loop = asyncio.get_running_loop()
        pool = self._pools.setdefault(key, _Pool())
        pool.items.append(item)
        limit = max(1, min(max_requests, self._cap))
        pool.limit = limit if pool.limit == 0 else min(pool.limit, limit)
        if len(pool.items) >= pool.limit:
            self._hand_over(key)
            return
        due = loop.time() + max_wait_s
        if due < pool.deadline:
            pool.deadline = due
            if pool.timer is not None:
                pool.timer.cancel()
            pool.timer = loop.call_at(due, self._hand_over, key)

    def flush_all(self) -> None:
        """Hand over every pool now (shutdown)."""
        for key in list(self._pools):
            self._hand_over(key)

    def _hand_over(self, key: K) -> None:
        pool = self._pools.pop(key, None)
        if pool is None:
            return
        if pool.timer is not None:
            pool.timer.cancel()
        if pool.items:
            self._flush(key, pool.items)
