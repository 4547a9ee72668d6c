"""The service's side of the cross-process pool: pooled calls go to Redis, batches come back.

Mixed into the service's per-loop worker when its journal can open a pool (the Redis
journal can; SQLite and ArangoDB cannot, and then pooling stays in the process):

- a pooled call whose row this worker just claimed is handed to the pool
  (:meth:`RedisPool.add`); the worker then *joins* it like any row another owner
  holds, and the pool's ``done`` channel wakes the join at once;
- when this worker flushes a pool, the rows it took are its own (journal ownership
  from then on): it rebuilds their items with the client that pooled calls here and
  sends them as one batch, through the same submission path as every batch;
- Redis refusing the hand-over (unreachable, slow) leaves the row with this worker,
  which pools it in-process instead: nothing accepted is dropped, and the cause is
  logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.pool.redis_pool import PoolCall, PoolUnavailable, RedisPool, pool_id_for
from engine.providers.anthropic.batches._inflight import InFlight, Item

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.journal import JournalEntry

__all__ = ["SharedPool", "request_size"]

_ENVELOPE_BYTES = 64
_READ_ATTEMPTS = 10  # about 25 s of pauses: a Redis restart


def request_size(item: Item) -> int:
    """Bytes the item adds to a batch body (the flusher's 256 MB rule)."""
    return len(json.dumps(item.params, separators=(",", ":")).encode("utf-8")) + _ENVELOPE_BYTES


class SharedPool(InFlight):
    """The worker's link to the cross-process pool (``_shared`` is None when the journal has none)."""

    _pool: Any  # the worker's in-process accumulator: the fallback
    _joined: dict[str, float]  # when each pooled item joined the in-process pool
    pool_exits: dict[str, tuple[int, float]]  # (fill, wait ms) of pooled items, for their callers

    async def _join(self, items: list[Item]) -> None:
        raise NotImplementedError

    def _keep_alive(self) -> None:
        raise NotImplementedError

    def _open_shared(self) -> None:
        self._shared: RedisPool | None = None
        self._samples: dict[str, Item] = {}
        self._woken: asyncio.Event | None = None
        opener = getattr(self.journal, "open_pool", None)
        if opener is None:
            return
        try:
            self._shared = opener(
                owner=self.lease.owner,
                journal_lease_s=self.lease.ttl_s,
                flush=self._flush_shared,
                settle=self._wake_joiners,
                warn=self._warn,
            )
        except Exception as exc:  # no shared pool: pooling stays in this process
            self._warn(f"pool:open:{type(exc).__name__}", f"redis pool unusable, pooling in-process: {exc!r}")

    # -- producer side ---------------------------------------------------------------

    def _share(self, items: Sequence[Item]) -> bool:
        """Hand pooled items to the shared pool; False when there is none."""
        if self._shared is None:
            return False
        for item in items:
            self._spawn(self._to_pool(item), owns=[item.hash])
        return True

    async def _to_pool(self, item: Item) -> None:
        shared = self._shared
        assert shared is not None
        pool_id = pool_id_for(*item.key)
        self._samples[pool_id] = item
        call = PoolCall(
            item.hash, request_size(item), item.plan.max_requests, item.plan.max_wait_s, item.plan.deadline_s
        )
        try:
            added = await shared.add(pool_id, call)
        except PoolUnavailable as exc:
            self._warn(f"pool:add:{type(exc.__cause__).__name__}", f"{exc}; pooling in-process")
            added = False
        if not added:  # the row is still ours: pool it here
            self._joined[item.hash] = time.monotonic()
            plan = item.plan
            self._pool.add(item.key, item, max_requests=plan.max_requests, max_wait_s=plan.max_wait_s)
            return
        shared.watched.add(item.hash)
        try:
            await self._join([item])
        finally:
            shared.watched.discard(item.hash)

    def _exited(self, row: JournalEntry) -> None:
        """Keep a shared-pool row's batch fill and pool wait for its caller on this loop, if any."""
        shared = self._shared
        if shared is not None and row.pool_fill is not None and row.request_hash in shared.watched:
            self.pool_exits[row.request_hash] = (row.pool_fill, row.pool_wait_ms or 0.0)

    async def _wake_joiners(self, _hashes: list[str]) -> None:
        """Some awaited rows may have ended: joins read the journal now instead of at their next poll."""
        woken, self._woken = self._woken, None
        if woken is not None:
            woken.set()

    async def _nap(self, delay: float) -> None:
        """The join's pause between journal reads: ``delay``, or less if the pool says a row ended."""
        if self._shared is None:
            await asyncio.sleep(delay)
            return
        if self._woken is None:
            self._woken = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), delay)

    # -- flusher side ----------------------------------------------------------------

    async def _flush_shared(self, pool_id: str, hashes: list[str]) -> None:
        """This worker took ``hashes`` from the pool: send them as one batch.

        The rows are this worker's now; if they cannot be read (Redis gone for longer
        than the retries), they are released, so the callers joined to them take them
        over at once instead of waiting on an owner that will never send them.
        """
        sample = self._samples.get(pool_id)
        rows = await self._read_taken(hashes)
        if rows is None or sample is None:
            await self._io_quiet("releasing rows it cannot send", self.journal.release, self.lease, hashes)
            return
        items: list[Item] = []
        for digest in hashes:
            row = rows.get(digest)
            if row is None or row.final or row.params is None:
                continue
            self._exited(row)  # a caller here is answered by this worker's batch, not by its join
            known = self._items.get(digest)
            item = known or replace(
                self._item_from(row, sample.client), headers_key=sample.headers_key, headers=sample.headers
            )
            items.append(replace(item, attempts=row.attempts))
        if not items:
            return
        self._track(items)
        self._keep_alive()
        self._spawn(self._submit(items), owns=[i.hash for i in items])

    async def _read_taken(self, hashes: list[str]) -> dict[str, JournalEntry] | None:
        for attempt in range(_READ_ATTEMPTS):
            try:
                rows: dict[str, JournalEntry] = await self._io(self.journal.get_many, hashes)
                return rows
            except Exception as exc:
                self._warn(f"pool:read:{type(exc).__name__}", f"reading rows taken from the pool: {exc!r}")
                await asyncio.sleep(min(2.0**attempt * 0.1, 5.0))
        return None

    async def _close_shared(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()
