"""Pooling single calls across processes on Redis: batches that fill, one flusher per pool.

Inside one process a pool holds at most the calls that process has in flight (24 in a
PipesHub indexing replica), so it cannot fill a batch. Here every process appends its
pooled calls to a Redis Stream per pool, and one process at a time flushes each pool::

    producer (any replica)                       flusher (whoever holds the pool's lease)
    journal.claim(row) ─▶ POOL_ADD ─▶ stream ──▶ XREADGROUP ─▶ buffer ─▶ flush rule met
          │   (row owned by the pool)                              │
          │                                              POOL_TAKE (lease checked; rows
          │                                              become the flusher's, XACK+XDEL)
          │                                                        │
          ◀── PUBLISH done / sweep ◀── journal.record ◀── batches.create, poll, results

- A pool is everything that must be equal inside one batch: credential fingerprint,
  base URL and the headers the client adds (``pool_id``).
- Leadership is a Redis key set with ``NX PX`` and renewed every third of its life.
  A flusher that dies stops renewing; another process of the pool takes the lease and
  the dead one's read-but-untaken entries with ``XAUTOCLAIM``. Entries are only
  removed in the same script that hands their rows to the flusher (``POOL_TAKE``), and
  that script first checks the lease: a flusher that lost its lease takes nothing,
  so no row is sent by two processes.
- Flush rules: the smallest ``maxRequests`` among the buffered calls, the API's
  request and byte limits, the oldest call's ``maxWait`` (measured from the stream
  id, which is Redis's clock) or its deadline, whichever comes first; and never more
  rows in the API's processing queue per credential than ``batch_queue_max_requests``.
- Waiting callers on every replica are woken by the ``done`` channel (the journal
  publishes each row that becomes final) and, in case a message was missed, by a
  sweep of everything still awaited every ``sweep_s``.

A pool object serves one event loop; everything it does is asyncio (``redis.asyncio``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.pool import scripts
from engine.pool.connect import RedisTarget

__all__ = ["PoolCall", "PoolLimits", "PoolUnavailable", "RedisPool", "pool_id_for", "transient"]

logger = logging.getLogger("llm_policy.pool")

#: ``flush(pool_id, hashes)``: the rows are now this process's; send them as one batch.
Flush = Callable[[str, list[str]], Awaitable[None]]
#: ``settle(hashes)``: rows that may have become final; answer their callers.
Settle = Callable[[list[str]], Awaitable[None]]
Warn = Callable[[str, str], None]

_READ_COUNT = 1000
_TAKE_CHUNK = 2000  # rows per POOL_TAKE call
_QUEUE_WINDOW_S = 25 * 3600  # a row older than a batch can live is out of the queue anyway


class PoolUnavailable(Exception):
    """Redis could not take the call (unreachable, slow, refused): it goes another way."""


def pool_id_for(credential: str, base_url: str, headers_key: str) -> str:
    """One pool per (key, endpoint, headers): a batch never mixes what changes the HTTP request."""
    text = "\x1f".join((credential, base_url, headers_key))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class PoolCall:
    """A claimed row handed to a pool, with the flush rules it brings."""

    digest: str
    size: int
    max_requests: int
    max_wait_s: float
    deadline_s: float


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """The limits a flusher applies (from ``engine/data/anthropic.yaml``) and its timings."""

    max_requests: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    queue_max_requests: int = 100_000
    lease_s: float = 5.0
    sweep_s: float = 2.0
    block_ms: int = 500
    retry_s: float = 1.0
    add_retry_s: float = 10.0


@dataclass(slots=True)
class _Entry:
    entry_id: str
    digest: str
    size: int
    max_requests: int
    due_ms: float


@dataclass(slots=True)
class _Buffer:
    """What a flusher has read from its stream and not yet handed over."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    size: int = 0
    not_before: float = 0.0  # the queue was full: wait before trying again

    def add(self, entry: _Entry) -> None:
        if entry.entry_id not in self.entries:
            self.entries[entry.entry_id] = entry
            self.size += entry.size

    def drop(self, ids: Iterable[str]) -> None:
        for entry_id in ids:
            entry = self.entries.pop(entry_id, None)
            if entry is not None:
                self.size -= entry.size

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0

    def due_ms(self) -> float:
        return min((e.due_ms for e in self.entries.values()), default=float("inf"))

    def ready(self, now_ms: float, limits: PoolLimits) -> list[_Entry]:
        """The entries to send now (oldest first), or none."""
        if not self.entries or time.monotonic() < self.not_before:
            return []
        cap = min(limits.max_requests, min(e.max_requests for e in self.entries.values()))
        entries = list(self.entries.values())
        full = len(entries) >= cap or self.size >= limits.max_bytes
        if not full and now_ms < self.due_ms():
            return []
        chosen: list[_Entry] = []
        size = 0
        for entry in entries:
            if chosen and (len(chosen) >= cap or size + entry.size > limits.max_bytes):
                break
            chosen.append(entry)
            size += entry.size
        return chosen


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, fields: dict[Any, Any]) -> _Entry | None:
    f = {_text(k): _text(v) for k, v in (fields or {}).items()}
    if "h" not in f:
        return None  # deleted while pending: nothing to send
    eid = _text(entry_id)
    enqueued_ms = float(eid.split("-", 1)[0])
    wait_ms = min(float(f.get("mw", 0)), float(f.get("dl", f.get("mw", 0))))
    return _Entry(eid, f["h"], int(f.get("n", 0)), int(f.get("mr", 1)), enqueued_ms + wait_ms)


class RedisPool:
    """The cross-process pool of one event loop: producer side, flushers, and the waiter."""

    def __init__(
        self,
        target: RedisTarget,
        *,
        owner: str,
        journal_lease_s: float,
        flush: Flush,
        settle: Settle,
        limits: PoolLimits | None = None,
        warn: Warn | None = None,
    ) -> None:
        self.target = target
        self.prefix = target.prefix
        self.owner = owner
        self.journal_lease_s = journal_lease_s
        self.limits = limits or PoolLimits()
        self._flush = flush
        self._settle = settle
        self._warn: Warn = warn or (lambda key, message: logger.warning(message))
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}
        self._waiter: asyncio.Task[None] | None = None
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        #: Hashes this loop has callers waiting for (the service adds and discards them).
        self.watched: set[str] = set()
        self.batches_flushed = 0

    # -- plumbing -------------------------------------------------------------------

    @property
    def redis(self) -> Any:
        if self._redis is None:
            self._redis = self.target.async_client()
        return self._redis

    def _key(self, pool_id: str, part: str) -> str:
        return f"{self.prefix}p:{pool_id}:{part}"

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(getattr(scripts, name))
        return await script(keys=keys, args=args)

    # -- producer side --------------------------------------------------------------

    async def add(self, pool_id: str, call: PoolCall) -> bool:
        """Hand a row this process claimed (owner ``self.owner``) to the pool.

        True: the call is in the stream and the row belongs to the pool; False: the row
        was not ours to hand over (already taken, sent or answered). The hand-over is
        idempotent, so a failure whose reply was lost is simply tried again (for up to
        ``add_retry_s``: a Redis restart); then :class:`PoolUnavailable` is raised, and
        the row is most likely still ours, to be sent another way.
        """
        args = [
            self.prefix, self.owner, pool_id, call.digest, call.size, call.max_requests,
            int(call.max_wait_s * 1000), int(call.deadline_s * 1000),
        ]  # fmt: skip
        give_up = time.monotonic() + self.limits.add_retry_s
        while True:
            try:
                added = await self._script("POOL_ADD", [self._key(pool_id, "s")], args)
                break
            except Exception as exc:
                if time.monotonic() >= give_up or not transient(exc):
                    raise PoolUnavailable(
                        f"redis pool {self.target.masked}: {type(exc).__name__}: {exc}"
                    ) from exc
                await asyncio.sleep(self.limits.retry_s / 4)
        self._ensure_flusher(pool_id)
        self._ensure_waiter()
        return bool(added)

    def serve(self, pool_id: str) -> None:
        """Take part in flushing ``pool_id`` (this process can send its batches)."""
        self._ensure_flusher(pool_id)

    def _ensure_flusher(self, pool_id: str) -> None:
        task = self._flushers.get(pool_id)
        if (task is None or task.done()) and not self._closed:
            self._flushers[pool_id] = asyncio.get_running_loop().create_task(self._flusher(pool_id))

    def _ensure_waiter(self) -> None:
        if (self._waiter is None or self._waiter.done()) and not self._closed:
            self._waiter = asyncio.get_running_loop().create_task(self._wait_loop())

    # -- flusher side ---------------------------------------------------------------

    async def _flusher(self, pool_id: str) -> None:
        """Contend for the pool's lease; while holding it, read, buffer and flush."""
        buffer = _Buffer()
        leader = False
        renewed = 0.0
        ttl_ms = int(self.limits.lease_s * 1000)
        lease, stream = self._key(pool_id, "lease"), self._key(pool_id, "s")
        while not self._closed:
            try:
                if not leader or time.monotonic() - renewed > self.limits.lease_s / 3:
                    was = leader
                    leader = bool(await self._script("LEASE_ACQUIRE", [lease], [self.owner, ttl_ms]))
                    renewed = time.monotonic()
                    if leader and not was:
                        await self._adopt(stream, buffer)
                    if not leader:
                        buffer.clear()
                        await asyncio.sleep(self.limits.lease_s / 3)
                        continue
                await self._read(stream, buffer)
                chosen = buffer.ready(time.time() * 1000, self.limits)
                if chosen:
                    leader = await self._take(pool_id, chosen, buffer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _reraise_cancel()
                self._warn(
                    f"pool:flusher:{type(exc).__name__}",
                    f"redis pool {self.target.masked}: flusher paused: {exc!r}",
                )
                leader = False
                buffer.clear()
                await asyncio.sleep(self.limits.retry_s)

    async def _adopt(self, stream: str, buffer: _Buffer) -> None:
        """New leader: make the group exist, then claim every entry read but never taken."""
        buffer.clear()
        try:
            await self.redis.xgroup_create(stream, scripts.GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                stream, scripts.GROUP, self.owner, 0, start, count=_READ_COUNT
            )
            start = _text(reply[0])
            for entry_id, fields in reply[1]:
                entry = _entry(entry_id, fields)
                if entry is not None:
                    buffer.add(entry)
            if start == "0-0":
                break
        await self._forget_consumers(stream)

    async def _forget_consumers(self, stream: str) -> None:
        """Earlier flushers hold nothing now (their entries were just claimed): drop their names."""
        for consumer in await self.redis.xinfo_consumers(stream, scripts.GROUP):
            name = _text(consumer.get("name", b""))
            if name and name != self.owner and int(consumer.get("pending", 0)) == 0:
                await self.redis.xgroup_delconsumer(stream, scripts.GROUP, name)

    async def _read(self, stream: str, buffer: _Buffer) -> None:
        wait_ms = buffer.due_ms() - time.time() * 1000
        block = int(max(1, min(self.limits.block_ms, wait_ms)))
        reply = await self.redis.xreadgroup(
            scripts.GROUP, self.owner, {stream: ">"}, count=_READ_COUNT, block=block
        )
        for _stream, messages in reply or []:
            for entry_id, fields in messages:
                entry = _entry(entry_id, fields)
                if entry is not None:
                    buffer.add(entry)

    async def _take(self, pool_id: str, chosen: list[_Entry], buffer: _Buffer) -> bool:
        """Hand ``chosen`` rows to this process and send them; False if the lease was lost."""
        now = time.time()
        taken: list[str] = []
        deferred: set[str] = set()
        lost = False
        for start in range(0, len(chosen), _TAKE_CHUNK):
            part = chosen[start : start + _TAKE_CHUNK]
            pairs = [x for e in part for x in (e.entry_id, e.digest)]
            args = [
                self.prefix, repr(now), self.owner, self.owner, repr(now + self.journal_lease_s), pool_id,
                self.limits.queue_max_requests, repr(now - _QUEUE_WINDOW_S), *pairs,
            ]  # fmt: skip
            keys = [self._key(pool_id, "s"), self._key(pool_id, "lease")]
            reply = await self._script("POOL_TAKE", keys, args)
            if reply == -1:
                lost = True
                break
            taken.extend(_text(h) for h in reply[0])
            deferred.update(_text(i) for i in reply[1])
        if lost:
            buffer.clear()
        buffer.drop(e.entry_id for e in chosen if e.entry_id not in deferred)
        if deferred:
            self._warn(
                "pool:queue-full",
                f"the Batches API processing queue is full ({self.limits.queue_max_requests} requests "
                "per workspace): pooled calls wait for room",
            )
            buffer.not_before = time.monotonic() + self.limits.retry_s
        if taken:
            self.batches_flushed += 1
            await self._note_exits(chosen, taken, now)
            await self._flush(pool_id, taken)  # taken rows are ours even if the lease just went
        return not lost

    async def _note_exits(self, chosen: list[_Entry], taken: list[str], now: float) -> None:
        """Write on each taken row how full its batch is and how long it waited in the pool.

        The callers, on whichever replica, read it with their answer for the decision
        log. Waits run from the stream id (Redis's clock at enqueue) to this flusher's
        clock at take. Only a record: a failure here is logged once and sends the batch all the same.
        """
        enqueued = {e.digest: float(e.entry_id.split("-", 1)[0]) for e in chosen}
        try:
            pipe = self.redis.pipeline(transaction=False)
            for digest in taken:
                wait_ms = max(0.0, now * 1000 - enqueued.get(digest, now * 1000))
                pipe.hset(
                    f"{self.prefix}i:{digest}",
                    mapping={"pool_fill": len(taken), "pool_wait_ms": f"{wait_ms:.1f}"},
                )
            await pipe.execute()
        except Exception as exc:
            _reraise_cancel()
            self._warn(
                f"pool:exits:{type(exc).__name__}",
                f"redis pool {self.target.masked}: batch fill not recorded: {exc!r}",
            )

    # -- waking waiting callers -------------------------------------------------------

    async def _wait_loop(self) -> None:
        """Settle awaited rows as the ``done`` channel names them; sweep them all now and then.

        A client without pub/sub (redis-py's asyncio cluster client before 6) only sweeps.
        """
        while not self._closed:
            pubsub = None
            try:
                if hasattr(self.redis, "pubsub"):
                    pubsub = self.redis.pubsub()
                    await pubsub.subscribe(self.prefix + "done")
                await self._sweep()  # anything that ended before the subscription
                swept = time.monotonic()
                while not self._closed:
                    if pubsub is None:
                        await asyncio.sleep(self.limits.sweep_s)
                    else:
                        await self._heard(pubsub)
                    if time.monotonic() - swept >= self.limits.sweep_s:
                        await self._sweep()
                        swept = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _reraise_cancel()
                self._warn(
                    f"pool:waiter:{type(exc).__name__}",
                    f"redis pool {self.target.masked}: waiting for results: {exc!r}; retrying",
                )
                await asyncio.sleep(self.limits.retry_s)
            finally:
                if pubsub is not None:
                    await _quietly(pubsub.aclose())

    async def _heard(self, pubsub: Any) -> None:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.limits.sweep_s)
        if message is not None:
            names = _text(message.get("data", b"")).split(",")
            mine = [h for h in names if h in self.watched]
            if mine:
                await self._settle(mine)

    async def _sweep(self) -> None:
        if self.watched:
            await self._settle(sorted(self.watched))

    # -- lifecycle ----------------------------------------------------------------------

    async def release(self, pool_ids: Collection[str] | None = None) -> None:
        """Give up leadership now (a clean shutdown), so another process flushes at once."""
        for pool_id in pool_ids if pool_ids is not None else list(self._flushers):
            lease = self._key(pool_id, "lease")
            await _quietly(self._script("LEASE_RELEASE", [lease], [self.owner]))

    async def aclose(self) -> None:
        """Stop flushing and waiting; entries read but not taken go to the next leader.

        Closes may overlap (the service closes a loop's worker from another loop too):
        the first does the work, the others wait for it.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._closed = True
        tasks = [*self._flushers.values(), *([self._waiter] if self._waiter else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self.release()
            await _quietly(self._redis.aclose())
            self._redis = None


def transient(exc: BaseException) -> bool:
    """A connection lost, a timeout, a server still loading its data: worth another try."""
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    return isinstance(exc, ConnectionError | TimeoutError | BusyLoadingError | OSError)


def _reraise_cancel() -> None:
    """A cancellation redis-py turned into a connection error is still a cancellation."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:  # closing is best effort: Redis may be gone
        logger.debug("redis pool: ignored while closing: %r", exc)
