"""The batch journal in Redis: the :class:`~engine.journal.protocol.Journal` protocol on the
Redis PipesHub already runs (``redis://``, ``rediss://``, ``?cluster=true``).

One hash per request (``{namespace}:i:<request hash>``) and a few indexes (open rows by
lease expiry, final rows by age, rows per owner, rows per batch); every protocol
method that writes is one Lua script (:mod:`engine.pool.scripts`), so it is atomic like
its SQLite twin whichever replica runs it, and the ownership rules of the protocol
sit in the scripts. Rows that become final are announced on the ``{namespace}:done``
channel, which is how a caller waiting on another replica learns of its answer.

The same Redis carries the cross-replica pool (:mod:`engine.pool`): a pooled row is
owned by its pool until a flusher takes it, and from then on follows these rules.

Durability is Redis's: with AOF (``appendonly yes``) an accepted item survives a
Redis restart; without persistence a restart forgets what was pending (see
docs/strategies.md). Every Redis failure comes out as :class:`JournalError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from engine.journal import register_journal_backend
from engine.journal.protocol import DEFAULT_RETENTION_S, JournalEntry, JournalError, Lease, Outcome
from engine.pool import scripts
from engine.pool.connect import RedisTarget, RedisURLError, parse_redis_url
from engine.pool.redis_pool import Flush, PoolLimits, RedisPool, Settle, transient
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["RedisJournal", "redis_journal_from_url"]

logger = logging.getLogger("llm_policy.journal")

T = TypeVar("T")
_CHUNK = 500  # rows per script call: keeps each script short (Redis blocks while it runs)
#: Writes about items already accepted: idempotent, so they are tried again through a short
#: outage (a Redis restart) instead of leaving a waiting caller on another replica without news.
#: A claim is not among them: a new call goes direct at once when Redis does not answer.
_PERSISTENT = frozenset({"RECORD", "MARK_SENDING", "MARK_SUBMITTED", "RENEW", "RELEASE"})


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[str, str]:
    """HGETALL as a dict of str (scripts return it as a flat list)."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def row_to_entry(digest: str, f: dict[str, str], *, with_params: bool = True) -> JournalEntry:
    """A journal row (hash fields) as the protocol's entry."""
    params = f.get("params") if with_params else None
    return JournalEntry(
        request_hash=digest, custom_id=f["custom_id"], credential=f["credential"], base_url=f["base_url"],
        state=f["state"], attempts=int(f.get("attempts", 0)), batch_id=f.get("batch_id"),  # type: ignore[arg-type]
        call_site=f.get("call_site"), retries=int(f.get("retries", 3)),
        on_failure=f.get("on_failure", "direct"),
        params=json.loads(params) if params else None,
        result=json.loads(f["result"]) if f.get("result") else None, error=f.get("error"),
        created_at=float(f.get("created_at", 0)), updated_at=float(f.get("updated_at", 0)),
        owner=f.get("owner"), lease_expires=float(f.get("lease_expires", 0)),
        sent_at=float(f["sent_at"]) if f.get("sent_at") else None,
        pool_fill=int(f["pool_fill"]) if f.get("pool_fill") else None,
        pool_wait_ms=float(f["pool_wait_ms"]) if f.get("pool_wait_ms") else None,
    )  # fmt: skip


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _claim_arg(e: JournalEntry) -> str:
    doc: dict[str, Any] = {
        "h": e.request_hash, "custom_id": e.custom_id, "credential": e.credential, "base_url": e.base_url,
        "attempts": e.attempts, "retries": e.retries, "on_failure": e.on_failure,
    }  # fmt: skip
    if e.call_site is not None:
        doc["call_site"] = e.call_site
    if e.params is not None:
        doc["params"] = _dumps(e.params)
    return _dumps(doc)


def _outcome_arg(o: Outcome) -> str:
    doc: dict[str, Any] = {"h": o.request_hash, "state": o.state, "attempts": o.attempts}
    if o.result is not None:
        doc["result"] = _dumps(o.result)
    if o.error is not None:
        doc["error"] = o.error
    return _dumps(doc)


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class RedisJournal:
    """The Redis :class:`~engine.journal.protocol.Journal` (thread-safe: redis-py pools connections)."""

    def __init__(
        self,
        target: RedisTarget,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        pool_lease_s: float = 5.0,
        write_retry_s: float = 30.0,
        cooldown_s: float = 5.0,
    ) -> None:
        self.target = target
        self.cooldown_s = cooldown_s
        self._down_until = 0.0
        self.pool_lease_s = pool_lease_s
        self.write_retry_s = write_retry_s
        self.url = target.masked
        self.prefix = target.prefix
        self.retention_s = retention_s
        try:
            self.redis: Any = target.sync_client()
        except Exception as exc:
            raise self._error(exc) from exc
        self._scripts: dict[str, Any] = {}

    def _error(self, exc: BaseException) -> JournalError:
        return JournalError(f"batch journal {self.url}: {type(exc).__name__}: {exc}")

    def _run(self, work: Callable[[], T], *, breaker: bool = True) -> T:
        """Every Redis failure (refused, timed out, read-only replica) as JournalError.

        A Redis that did not answer is not asked again for ``cooldown_s``: new calls
        then go direct at once instead of each waiting out the timeouts (the writes
        about accepted items, ``breaker=False``, keep trying).
        """
        if breaker and time.monotonic() < self._down_until:
            raise JournalError(
                f"batch journal {self.url}: Redis did not answer a moment ago; not asked again yet"
            )
        try:
            return work()
        except JournalError:
            raise
        except Exception as exc:
            if transient(exc):
                self._down_until = time.monotonic() + self.cooldown_s
            raise self._error(exc) from exc

    def _script(self, name: str, args: Sequence[Any], keys: Sequence[str] = ()) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(getattr(scripts, name))
        anchor = list(keys) or [self.prefix + "open"]  # a key of the namespace: routes the script's slot
        if name not in _PERSISTENT:
            return self._run(lambda: script(keys=anchor, args=[self.prefix, *args]))
        give_up = time.monotonic() + self.write_retry_s
        while True:
            try:
                return self._run(lambda: script(keys=anchor, args=[self.prefix, *args]), breaker=False)
            except JournalError as exc:
                if time.monotonic() >= give_up or exc.__cause__ is None or not transient(exc.__cause__):
                    raise
                time.sleep(0.2)

    def _hgetall(self, hashes: Sequence[str]) -> list[dict[str, str]]:
        def work() -> list[dict[str, str]]:
            pipe = self.redis.pipeline(transaction=False)
            for digest in hashes:
                pipe.hgetall(self.prefix + "i:" + digest)
            return [{_text(k): _text(v) for k, v in row.items()} for row in pipe.execute()]

        return self._run(work)

    # -- the Journal protocol ------------------------------------------------------

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(list(hashes)):
            for digest, fields in zip(chunk, self._hgetall(chunk), strict=True):
                if fields:
                    found[digest] = row_to_entry(digest, fields)
        return found

    def claim(
        self, entries: Sequence[JournalEntry], lease: Lease, stale_before: float | None = None
    ) -> dict[str, JournalEntry]:
        now = time.time()
        stale = -1.0 if stale_before is None else stale_before
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(list(entries)):
            args = [repr(now), lease.owner, repr(now + lease.ttl_s), repr(stale), *map(_claim_arg, chunk)]
            rows = self._script("CLAIM", args)
            for entry, flat in zip(chunk, rows, strict=True):
                found[entry.request_hash] = row_to_entry(entry.request_hash, _fields(flat))
        return found

    def mark_sending(self, hashes: Sequence[str], lease: Lease) -> None:
        now = repr(time.time())
        for chunk in _chunks(list(hashes)):
            self._script("MARK_SENDING", [now, lease.owner, *chunk])

    def mark_submitted(self, hashes: Sequence[str], batch_id: str, lease: Lease) -> None:
        now = repr(time.time())
        for chunk in _chunks(list(hashes)):
            self._script("MARK_SUBMITTED", [now, lease.owner, batch_id, int(self.retention_s), *chunk])

    def record(self, outcomes: Sequence[Outcome]) -> None:
        now = repr(time.time())
        for chunk in _chunks(list(outcomes)):
            self._script("RECORD", [now, *map(_outcome_arg, chunk)])

    def renew(self, lease: Lease) -> int:
        return int(self._script("RENEW", [lease.owner, repr(time.time() + lease.ttl_s)]))

    def take_over(self, lease: Lease) -> list[JournalEntry]:
        now = time.time()
        rows = self._script("TAKE_OVER", [repr(now), lease.owner, repr(now + lease.ttl_s)])
        entries = [row_to_entry(_text(digest), _fields(flat)) for digest, flat in rows]
        return sorted(entries, key=lambda e: (e.created_at, e.request_hash))

    def release(self, lease: Lease, hashes: Sequence[str] | None = None) -> None:
        if hashes is None:
            members = self._run(lambda: self.redis.smembers(self.prefix + "o:" + lease.owner))
            hashes = sorted(_text(m) for m in members)
        for chunk in _chunks(list(hashes)):
            self._script("RELEASE", [lease.owner, *chunk])

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        members = self._run(lambda: self.redis.smembers(self.prefix + "b:" + batch_id))
        found = []
        for chunk in _chunks(sorted(_text(m) for m in members)):
            for digest, fields in zip(chunk, self._hgetall(chunk), strict=True):
                if fields.get("state") == "submitted":
                    found.append(row_to_entry(digest, fields, with_params=False))
        return found

    def prune(self, older_than_s: float | None = None) -> int:
        """Housekeeping: a Redis that does not answer now is pruned on the next open (0 here)."""
        cutoff = time.time() - (self.retention_s if older_than_s is None else older_than_s)
        total = 0
        while True:
            try:
                n = int(self._script("PRUNE", [repr(cutoff), _CHUNK]))
            except JournalError as exc:
                logger.warning("%s; pruning skipped", exc)
                return total
            total += n
            if n < _CHUNK:
                return total

    def counts(self) -> dict[str, int]:
        """Rows per state (for status displays and tests)."""

        def work() -> dict[str, int]:
            out: dict[str, int] = {}
            for key in self.redis.scan_iter(match=self.prefix + "i:*", count=1000):
                state = _text(self.redis.hget(key, "state") or b"?")
                out[state] = out.get(state, 0) + 1
            return out

        return self._run(work)

    def open_pool(
        self,
        *,
        owner: str,
        journal_lease_s: float,
        flush: Flush,
        settle: Settle,
        warn: Callable[[str, str], None],
    ) -> RedisPool:
        """The cross-process pool on this Redis, for one event loop (limits from the data file)."""
        limits = capabilities().limits
        pool_limits = PoolLimits(
            max_requests=int(limits["batch_max_requests"]),
            max_bytes=int(limits["batch_max_bytes"]),
            queue_max_requests=int(limits.get("batch_queue_max_requests", 100_000)),
            lease_s=self.pool_lease_s,
        )
        return RedisPool(
            self.target, owner=owner, journal_lease_s=journal_lease_s, flush=flush, settle=settle,
            limits=pool_limits, warn=warn,
        )  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the process may be going down
            self.redis.close()


def redis_journal_from_url(url: str, retention_s: float = DEFAULT_RETENTION_S) -> RedisJournal:
    try:
        target = parse_redis_url(url)
    except RedisURLError as exc:
        raise JournalError(str(exc)) from exc
    return RedisJournal(target, retention_s=target.retention_s or retention_s)


for _scheme in ("redis", "rediss"):
    register_journal_backend(_scheme, redis_journal_from_url)
