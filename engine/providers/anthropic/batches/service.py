"""Durable Message Batches for single calls (``accumulate``) and explicit batches.

The service owns every batch item from the moment a caller hands it over until
its result is in the journal, independently of the caller: a caller that gives up
(timeout, cancellation) does not cancel its item, and the result still lands in
the journal.

Lifecycle of one item::

    answer_one / answer_many
      └─ same request in flight on this loop?   join its future
      └─ journal claim (one transaction):
           answered, and a redelivery?          answer from the journal (paid 0 here)
           pending elsewhere, owner alive?      join: wait for its row to end
           ours (new, failed, owner dead)       pool (accumulate) or now (explicit)
      └─ journal: intent (sent_at) ─▶ batches.create ─▶ journal: submitted
            ─▶ poll ─▶ stream results ─▶ journal: succeeded ─▶ caller
         create failed ambiguously (5xx, dropped)? find the batch it may have made
            (list recent batches, match custom_ids) before sending anything again
         item errored permanently (400/401/403/404/413)? the SDK's exception, at once
         expired/canceled/missing/transient? retried up to plan.retries within the
            plan's deadline (from the first submission), then onFailure: direct or error

**Redelivery, not collapse.** A journal answer goes only to the same request sent
again: with the same idempotency key (any time within retention), or identical
within ``dedupe_window_s``. Identical prompts inside one ``answer_many`` are
distinct items (each paid, each its own sample).

**One worker per event loop.** Futures and timers belong to one loop, so each loop
that calls the service gets a worker of its own, with its own journal lease; two
loops asking for the same request join through the journal like two processes.
A worker whose loop has closed gives its rows up at once to the next one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anthropic
from anthropic.types import Message

from engine.decision import BatchPlan
from engine.journal import DEFAULT_LEASE_S, Journal, JournalEntry, Lease
from engine.providers.anthropic.batches._ids import (
    client_identity,
    custom_id_for,
    headers_fingerprint,
    request_hash,
)
from engine.providers.anthropic.batches._inflight import Failure, Item, PoolKey, Settled
from engine.providers.anthropic.batches._reconcile import find_created
from engine.providers.anthropic.batches._shared import SharedPool
from engine.providers.anthropic.batches.accumulator import Accumulator
from engine.providers.anthropic.batches.client import BatchClient, ambiguous, connection_lost, retry_after_s
from engine.providers.anthropic.batches.errors import (
    BatchItemError,
    NotBatchable,
    NotHandedOver,
    recorded_sdk_error,
)
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["CLIENT_OPTIONS", "Answer", "BatchService"]

logger = logging.getLogger("llm_policy.batches")

RESULT_CHUNK = 500  # result lines written to the journal per transaction
RESULT_STREAM_ATTEMPTS = 20  # reads in a row that bring no new line before the batch is left to a resume
RECONCILE_ATTEMPTS = 30
DEFAULT_DEDUPE_WINDOW_S = 600.0
#: How long after an ambiguous create the service keeps looking for the batch before sending again.
DEFAULT_CREATE_GRACE_S = 5.0
#: Options of the SDK's ``create`` call that are not request body fields.
CLIENT_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")

ClientFor = Callable[[str, str], anthropic.AsyncAnthropic | None]


@dataclass(frozen=True, slots=True)
class Answer:
    """One item's answer. ``paid_here`` is False when this call did not pay for it
    (answered from the journal, or joined to the same request in flight)."""

    message: Message
    batch_id: str | None
    paid_here: bool
    #: For a pooled call: the requests in the pool when it left as a batch, and how long
    #: this call waited in it (ms). None when it was joined to a request already in flight.
    pool_fill: int | None = None
    pool_wait_ms: float | None = None


def as_sent(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The request body and extra headers the SDK would send for ``messages.create(**params)``.

    ``extra_body`` is merged into the body and ``timeout`` dropped (the batch has its
    own deadline), as the SDK does on the wire; streaming and ``extra_query`` have no
    batch form, so those raise :class:`NotBatchable`.
    """
    if params.get("stream"):
        raise NotBatchable("a streaming request cannot go through a batch: send it direct")
    if params.get("extra_query"):
        raise NotBatchable("a request with extra_query cannot go through a batch: send it direct")
    body = {k: v for k, v in params.items() if k not in CLIENT_OPTIONS}
    extra_body = params.get("extra_body")
    if extra_body:
        body.update(extra_body)
    headers = {str(k): str(v) for k, v in (params.get("extra_headers") or {}).items() if v is not None}
    return body, headers


def _salts(bases: Sequence[str], keys: Sequence[str | None]) -> list[str]:
    """Per item: its idempotency key, or ``#k`` for the k-th repeat of a request in one call."""
    seen: Counter[str] = Counter()
    out: list[str] = []
    for base, key in zip(bases, keys, strict=True):
        if key is not None:
            out.append(f"key:{key}")
            continue
        n = seen[base]
        seen[base] += 1
        out.append(f"#{n}" if n else "")
    return out


def _only(identity: tuple[str, str], client: anthropic.AsyncAnthropic) -> ClientFor:
    """A ``client_for`` that knows one identity."""
    return lambda fingerprint, base_url: client if (fingerprint, base_url) == identity else None


class _Worker(SharedPool):
    """The service on one event loop."""

    def __init__(
        self, journal: Journal, lease: Lease, *, poll_interval: float, max_poll_interval: float,
        dedupe_window_s: float, create_grace_s: float, warn: Callable[[str, str], None],
        orphans: list[Lease],
    ) -> None:  # fmt: skip
        super().__init__(
            journal, lease, poll_interval=poll_interval, max_poll_interval=max_poll_interval, warn=warn
        )
        self.dedupe_window_s = dedupe_window_s
        self.create_grace_s = create_grace_s
        self.batches_created = 0
        self._pool: Accumulator[PoolKey, Item] = Accumulator(
            self._flush_pool, max_requests_cap=int(capabilities().limits["batch_max_requests"])
        )
        #: batches being waited for -> their members (custom_id -> hash); members may join until reading
        self._watched: dict[str, dict[str, str]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._resumed: set[tuple[str, str]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._orphans = orphans
        #: Runs before a pool's items become batches: warms shared prefixes, orders items by them.
        self.warm: Callable[[list[Item]], Awaitable[list[Item]]] | None = None
        #: Pooled items by request hash: when each joined the pool, then (fill, wait ms) once it left.
        self._joined: dict[str, float] = {}
        self.pool_exits: dict[str, tuple[int, float]] = {}
        self._open_shared()  # the journal's cross-process pool, if it has one (Redis)

    # -- intake ---------------------------------------------------------------------------

    def items(
        self,
        params_list: Sequence[dict[str, Any]],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        call_site: str | None,
        keys: Sequence[str | None],
    ) -> list[Item]:
        credential, base_url = client_identity(client)
        sent = [as_sent(p) for p in params_list]
        prints = [headers_fingerprint(client, headers) for _, headers in sent]
        bases = [
            request_hash(b, credential, base_url, headers=h) for (b, _), h in zip(sent, prints, strict=True)
        ]
        out: list[Item] = []
        for (body, headers), hk, base, salt in zip(sent, prints, bases, _salts(bases, keys), strict=True):
            digest = request_hash(body, credential, base_url, headers=hk, salt=salt) if salt else base
            out.append(
                Item(
                    digest, custom_id_for(digest), body, plan, client, credential, base_url, hk,
                    tuple(sorted(headers.items())), call_site,
                )
            )  # fmt: skip
        return out

    async def attach(
        self, items: Sequence[Item], *, pooled: bool, keyed: bool
    ) -> list[tuple[asyncio.Future[Settled], bool]]:
        """A future per item, and whether this call pays for it."""
        await self._first_use(items)
        futures: dict[str, asyncio.Future[Settled]] = {}
        fresh: list[Item] = []
        for item in items:
            future = self._futures.get(item.hash)
            if future is None:
                future = self._future(item.hash)
                self._items[item.hash] = item
                fresh.append(item)
            futures[item.hash] = future
        paid = {i.hash for i in fresh}
        if fresh:
            stale = None if keyed else time.time() - self.dedupe_window_s
            try:
                rows = await self._io(self.journal.claim, [i.entry() for i in fresh], self.lease, stale)
            except Exception as exc:  # nothing was sent: the callers go direct
                for item in fresh:
                    failed = NotHandedOver(f"batch journal unusable: {exc!r}")
                    failed.__cause__ = exc
                    self._resolve(item.hash, failed)
            else:
                self._keep_alive()
                self._place(fresh, rows, pooled=pooled, paid=paid)
        return [(futures[i.hash], i.hash in paid) for i in items]

    def _place(
        self, items: Sequence[Item], rows: Mapping[str, JournalEntry], *, pooled: bool, paid: set[str]
    ) -> None:
        """Send what this worker now owns; answer or join the rest."""
        route: list[Item] = []
        adopt: dict[str, list[Item]] = {}
        recover: list[Item] = []
        join: list[Item] = []
        since = time.time()
        for item in items:
            row = rows.get(item.hash)
            if row is not None and row.state in ("succeeded", "direct") and row.result is not None:
                paid.discard(item.hash)
                self._resolve(item.hash, Message.model_validate(row.result), row.batch_id)
            elif row is not None and row.owner != self.lease.owner:
                paid.discard(item.hash)
                join.append(item)
            else:
                if row is not None and (row.attempts or row.batch_id or row.sent_at):
                    item = replace(item, attempts=row.attempts, first_sent=row.created_at)
                self._items[item.hash] = item
                if row is not None and row.state == "submitted" and row.batch_id:
                    adopt.setdefault(row.batch_id, []).append(item)
                elif row is not None and row.sent_at is not None:
                    recover.append(item)
                    since = min(since, row.sent_at)
                else:
                    route.append(item)
        for batch_id, members in adopt.items():
            self._watch(batch_id, self._batch_client(members[0]), members, deadline_s=None)
        if recover:
            self._spawn(self._recover(recover, since), owns=[i.hash for i in recover])
        if join:
            self._spawn(self._join(join), owns=[i.hash for i in join])
        if route:
            self._route(route, pooled=pooled)

    def _route(self, items: list[Item], *, pooled: bool) -> None:
        if pooled:
            if self._share(items):  # the cross-process pool (Redis) takes them
                return
            for item in items:
                self._joined[item.hash] = time.monotonic()
                self._pool.add(
                    item.key, item, max_requests=item.plan.max_requests, max_wait_s=item.plan.max_wait_s
                )
            return
        by_key: dict[PoolKey, list[Item]] = {}
        for item in items:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group), owns=[i.hash for i in group])

    def _flush_pool(self, _key: PoolKey, items: list[Item]) -> None:
        left = time.monotonic()
        if len(self.pool_exits) > 100_000:  # answers nobody asked about (failed callers)
            self.pool_exits.clear()
        for item in items:
            joined = self._joined.pop(item.hash, left)
            self.pool_exits[item.hash] = (len(items), (left - joined) * 1000.0)
        self._spawn(self._submit(items), owns=[i.hash for i in items])

    async def _join(self, items: list[Item]) -> None:
        """Wait for items another owner holds; take them over if that owner dies."""
        waiting = {i.hash: i for i in items}
        delay = self.poll_interval
        while waiting:
            await self._nap(delay)  # woken early when the shared pool says a row ended
            delay = min(delay * 1.5, self.max_poll_interval)
            try:
                rows = await self._io(self.journal.get_many, list(waiting))
            except Exception as exc:
                self._warn(
                    f"journal:join:{type(exc).__name__}", f"batch journal unreadable while waiting: {exc!r}"
                )
                continue
            orphaned: list[Item] = []
            now = time.time()
            for digest, item in list(waiting.items()):
                row = rows.get(digest)
                if row is not None and row.state in ("succeeded", "direct") and row.result is not None:
                    if row.state == "succeeded":
                        self._exited(row)
                    self._resolve(digest, Message.model_validate(row.result), row.batch_id)
                elif row is not None and row.state == "failed":
                    error = recorded_sdk_error(item.client, row.error) or BatchItemError(
                        custom_id=item.custom_id, request_hash=digest, failure="failed",
                        attempts=row.attempts, call_site=item.call_site,
                        detail=f"answered by another worker with an error: {row.error}",
                    )  # fmt: skip
                    self._resolve(digest, error)
                elif row is None or row.lease_expires < now:
                    orphaned.append(item)
                else:
                    continue
                del waiting[digest]
            if orphaned:
                rows = await self._io(self.journal.claim, [i.entry() for i in orphaned], self.lease, None)
                self._keep_alive()
                self._place(orphaned, rows, pooled=False, paid=set())

    # -- leases -----------------------------------------------------------------------------

    def _keep_alive(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while self._futures or self._tasks or len(self._pool):
            await asyncio.sleep(self.lease.ttl_s / 3)
            await self._io_quiet("renewing the lease", self.journal.renew, self.lease)

    async def _first_use(self, items: Iterable[Item]) -> None:
        """Rows of workers whose loop closed go first; then the first request of an
        identity picks up what a dead owner left for it."""
        while self._orphans:
            await self._io_quiet("releasing a closed loop's rows", self.journal.release, self._orphans.pop())
        for item in items:
            identity = (item.credential, item.base_url)
            if identity not in self._resumed:
                self._resumed.add(identity)
                try:
                    await self.resume(_only(identity, item.client))
                except Exception as exc:  # best effort: the rows stay for a later resume
                    self._warn(f"resume:{type(exc).__name__}", f"resuming journaled batches failed: {exc!r}")

    async def resume(self, client_for: ClientFor) -> int:
        """Take over the rows of owners whose lease ran out, and finish them."""
        rows = await self._io(self.journal.take_over, self.lease)
        unknown: list[str] = []
        batches: dict[str, list[Item]] = {}
        recover: dict[tuple[str, str], list[Item]] = {}
        fresh: list[Item] = []
        for row in rows:
            client = client_for(row.credential, row.base_url)
            if client is None or row.request_hash in self._futures:
                unknown.append(row.request_hash)
                continue
            self._resumed.add((row.credential, row.base_url))
            item = self._item_from(row, client)
            self._track([item])
            if row.state == "submitted" and row.batch_id:
                batches.setdefault(row.batch_id, []).append(item)
            elif row.sent_at is not None:
                recover.setdefault((row.credential, row.base_url), []).append(item)
            else:
                fresh.append(item)
        if unknown:
            await self._io(self.journal.release, self.lease, unknown)
        started = 0
        for batch_id, members in batches.items():
            started += self._watch(batch_id, self._batch_client(members[0]), members, deadline_s=None)
        by_sent = {r.request_hash: r.sent_at or 0.0 for r in rows}
        for group in recover.values():
            since = min(by_sent[i.hash] for i in group)
            self._spawn(self._recover(group, since), owns=[i.hash for i in group])
        if rows:
            self._keep_alive()
        if fresh:
            self._route(fresh, pooled=False)
        return started

    # -- submission -----------------------------------------------------------------------

    async def _submit(self, items: list[Item]) -> None:
        """Create batches for ``items`` (split at the limits) and start collecting each."""
        if self.warm is not None:
            try:
                items = await self.warm(items)
            except Exception as exc:  # warming is an optimisation: the batch goes as it is
                self._warn(f"warm:{type(exc).__name__}", f"warming shared prefixes failed: {exc!r}")
        batches = self._batch_client(items[0])
        by_id = {i.custom_id: i for i in items}
        requests = ({"custom_id": i.custom_id, "params": i.params} for i in items)
        for chunk in batches.split(requests):
            await self._create(batches, chunk, [by_id[r["custom_id"]] for r in chunk])

    async def _create(self, batches: BatchClient, chunk: list[dict[str, Any]], group: list[Item]) -> None:
        now = time.time()
        group = [i if i.first_sent is not None else replace(i, first_sent=now) for i in group]
        self._items.update((i.hash, i) for i in group)
        hashes = [i.hash for i in group]
        await self._io_quiet("recording the intent to create", self.journal.mark_sending, hashes, self.lease)
        try:
            batch = await batches.create(chunk)
        except anthropic.APIError as exc:
            if ambiguous(exc):
                await self._find_or_resend(batches, group, now, exc)
            elif isinstance(exc, anthropic.APIStatusError):
                await self._refused(batches, chunk, group, exc)
            else:
                await self._failed(
                    group, "submission", f"batch not accepted: {exc}", delay=self.poll_interval
                )
            return
        except Exception as exc:  # unserialisable params: nothing was sent; a direct call says why
            for item in group:
                self._spawn(
                    self._give_up(item, "submission", repr(exc), attempts=item.attempts + 1), owns=[item.hash]
                )
            return
        self.batches_created += 1
        await self._io_quiet(
            "recording the submission", self.journal.mark_submitted, hashes, batch.id, self.lease
        )
        deadline = min(i.plan.deadline_s for i in group)
        self._watch(batch.id, batches, group, deadline)

    async def _unsent(self, group: list[Item], exc: BaseException) -> None:
        """A create that failed before sending (params the SDK cannot serialise): a direct call says why."""
        for item in group:
            self._spawn(
                self._give_up(item, "submission", repr(exc), attempts=item.attempts + 1), owns=[item.hash]
            )

    async def _recover(self, items: list[Item], since: float) -> None:
        """Items whose create may have reached the API (a crash or an ambiguous failure)."""
        await self._find_or_resend(self._batch_client(items[0]), items, since, None)

    async def _find_or_resend(
        self, batches: BatchClient, group: list[Item], since: float, cause: BaseException | None
    ) -> None:
        """Adopt the batch an ambiguous create made, or send again once sure there is none."""
        wanted = {i.custom_id for i in group}
        if cause is not None:
            logger.info(
                "creating a batch of %d failed (%r): looking for it before sending again", len(group), cause
            )
        delay = (retry_after_s(cause) if cause else None) or self.poll_interval
        found: str | None = None
        failures = 0
        while True:
            try:
                found = await find_created(batches, wanted, since)
            except Exception as exc:
                if not (isinstance(exc, anthropic.APIError) or connection_lost(exc)):
                    raise
                failures += 1
                if failures >= RECONCILE_ATTEMPTS:
                    detail = f"cannot tell whether the batch was created ({exc}); the journal keeps it"
                    self._fail_all([i.hash for i in group], "uncollected", detail)
                    return
                await asyncio.sleep(retry_after_s(exc) or delay)
                delay = min(delay * 2, self.max_poll_interval)
                continue
            # A create the client gave up on may still be on its way through the server:
            # "none" counts only once the create is older than the grace period.
            left = since + self.create_grace_s - time.time()
            if found is not None or left <= 0:
                break
            await asyncio.sleep(min(left, delay))
        if found is not None:
            hashes = [i.hash for i in group]
            await self._io_quiet(
                "recording the submission", self.journal.mark_submitted, hashes, found, self.lease
            )
            self._watch(found, batches, group, min(i.plan.deadline_s for i in group))
            return
        detail = f"batch not accepted: {cause}" if cause else "never accepted before a restart"
        await self._failed(group, "submission", detail, delay=0.0 if cause is None else delay)

    async def _refused(
        self,
        batches: BatchClient,
        chunk: list[dict[str, Any]],
        group: list[Item],
        exc: anthropic.APIStatusError,
    ) -> None:
        if exc.status_code == 413 and len(group) > 1:
            half = len(group) // 2
            await self._create(batches, chunk[:half], group[:half])
            await self._create(batches, chunk[half:], group[half:])
            return
        detail = f"batch refused with {exc.status_code}: {exc.message}"
        if exc.status_code == 429:  # not created: wait as asked, then again
            await self._failed(group, "submission", detail, delay=retry_after_s(exc) or self.poll_interval)
            return
        for item in group:  # sending the same batch again would be refused again: fall back at once
            self._spawn(
                self._give_up(item, "submission", detail, attempts=item.attempts + 1), owns=[item.hash]
            )

    # -- collection -----------------------------------------------------------------------

    def _watch(
        self, batch_id: str, batches: BatchClient, members: list[Item], deadline_s: float | None
    ) -> bool:
        """Collect ``members`` from ``batch_id``: joined to the watch already waiting for it,
        or a watch of their own (True). A watch past waiting (reading results) takes no one new."""
        ids = {i.custom_id: i.hash for i in members}
        waiting = self._watched.get(batch_id)
        if waiting is not None:
            waiting.update(ids)
            task = self._watchers.get(batch_id)
            if task is not None and task in self._tasks:
                self._tasks[task] = (*self._tasks[task], *ids.values())
            return False
        self._watched[batch_id] = ids
        self._watchers[batch_id] = self._spawn(
            self._collect(batch_id, batches, deadline_s), owns=ids.values()
        )
        return True

    async def _collect(self, batch_id: str, batches: BatchClient, deadline_s: float | None) -> None:
        """Wait for the batch, stream its results into the journal, handle what failed."""
        members = self._watched.get(batch_id, {})
        try:
            batch = await batches.wait(batch_id, deadline_s=deadline_s)
            members = self._watched.pop(batch_id, members)  # the member list is final from here
            if batch.results_url is None:
                await self._archived(batch_id, members)
                return
            failed = await self._read_results(batch_id, batches, members)
        except anthropic.NotFoundError as exc:
            failed = [
                Failure(h, "missing", f"batch {batch_id} not found: {exc.message}") for h in members.values()
            ]
        except Exception as exc:
            self._abandon(batch_id, members, exc)
            return
        finally:
            self._watched.pop(batch_id, None)
            self._watchers.pop(batch_id, None)
        if failed:
            await self._failed_lines(failed, batches.client)

    async def _archived(self, batch_id: str, members: dict[str, str]) -> None:
        """An ended batch without results (archived): paid, unreadable, never sent again."""
        detail = f"batch {batch_id} has no results any more (archived)"
        for digest in members.values():
            item = self._items.get(digest)
            if item is not None:
                await self._fail(item, "archived", detail, item.attempts)
            else:
                self._fail_all([digest], "archived", detail)

    def _abandon(self, batch_id: str, members: dict[str, str], exc: BaseException) -> None:
        """The batch could not be polled or read: its items may be paid, so never resend them.

        Waiting callers get a clear error; the journal keeps the items ``submitted``,
        so a later resume (or an identical request) collects the batch.
        """
        logger.warning("batch %s could not be collected (%s): left in the journal for resume", batch_id, exc)
        detail = f"batch {batch_id} could not be collected ({exc!r}); the journal keeps it for resume"
        self._fail_all(members.values(), "uncollected", detail)

    async def _read_results(
        self, batch_id: str, batches: BatchClient, members: dict[str, str]
    ) -> list[Failure]:
        remaining = dict(members)
        failed: list[Failure] = []
        fruitless = 0  # reads in a row that got no new line
        delay = self.poll_interval
        while True:
            before = len(remaining)
            try:
                await self._stream(batches, batch_id, remaining, failed)
                break
            except Exception as exc:  # connection cut mid-stream, 5xx: read again, the journal has the rest
                fruitless = 0 if len(remaining) < before else fruitless + 1
                if fruitless >= RESULT_STREAM_ATTEMPTS:
                    raise
                logger.info("reading results of %s: %r; reading again", batch_id, exc)
                await asyncio.sleep(retry_after_s(exc) or delay)
                delay = min(delay * 1.5, self.max_poll_interval)
        failed.extend(
            Failure(h, "missing", f"absent from the results of {batch_id}") for h in remaining.values()
        )
        return failed

    async def _stream(
        self, batches: BatchClient, batch_id: str, remaining: dict[str, str], failed: list[Failure]
    ) -> None:
        """Results in; each leaves ``remaining`` only once it is journaled (or failed, in ``failed``)."""
        done: list[tuple[str, str, Message]] = []

        async def flush() -> None:
            chunk = done[:]
            done.clear()
            await self._succeed([(h, m) for _, h, m in chunk], batch_id)
            for custom_id, _, _ in chunk:
                remaining.pop(custom_id, None)

        try:
            async for line in batches.results(batch_id):
                digest = remaining.get(line.custom_id)
                if digest is None:
                    continue
                result = line.result
                if result.type == "succeeded":
                    done.append((line.custom_id, digest, result.message))
                    if len(done) >= RESULT_CHUNK:
                        await flush()
                    continue
                remaining.pop(line.custom_id)
                if result.type == "errored":
                    inner = result.error.error
                    failed.append(Failure(digest, "errored", f"{inner.type}: {inner.message}", inner.type))
                else:
                    failed.append(Failure(digest, result.type))
        finally:
            await flush()

    # -- shutdown -------------------------------------------------------------------------

    async def aclose(self, timeout: float | None) -> None:
        self._pool.flush_all()
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_all(list(self._futures), "closed", "the batch service closed; the journal keeps the item")
        if self._renewer is not None:
            self._renewer.cancel()
        await self._close_shared()
        await self._io_quiet("releasing rows at close", self.journal.release, self.lease, None)

    async def _drain(self) -> None:
        """Wait until every task has ended and been forgotten.

        A task leaves ``_tasks`` in its done callback, one loop turn after it ends. Each
        pass must give the loop that turn: on Python 3.12+ a ``gather`` of tasks that
        have all ended is finished at once, so looping on it would spin forever.
        """
        while self._tasks:
            running = [task for task in self._tasks if not task.done()]
            if running:
                await asyncio.wait(running)
            else:
                await asyncio.sleep(0)  # the done callbacks that forget them run now


class BatchService:
    """Routes requests through Message Batches durably; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        *,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        lease_s: float = DEFAULT_LEASE_S,
        dedupe_window_s: float = DEFAULT_DEDUPE_WINDOW_S,
        create_grace_s: float = DEFAULT_CREATE_GRACE_S,
    ) -> None:
        self.journal = journal
        self.create_grace_s = create_grace_s
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.lease_s = lease_s
        self.dedupe_window_s = dedupe_window_s
        self._workers: dict[asyncio.AbstractEventLoop, _Worker] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._retired_batches = 0
        #: Given to each event loop's worker (see ``_Worker.warm``); set by the engine.
        self.warm: Callable[[list[Item]], Awaitable[list[Item]]] | None = None

    @property
    def batches_created(self) -> int:
        with self._lock:
            return self._retired_batches + sum(w.batches_created for w in self._workers.values())

    def pool_depth(self) -> int:
        """Requests waiting in a pool for their batch to be sent, on every loop (for metrics)."""
        with self._lock:
            return sum(len(w._pool) for w in self._workers.values())

    def pool_oldest_age(self) -> float:
        """Seconds the oldest pooled request has waited, 0 when none waits (for metrics)."""
        with self._lock:
            return max((w._pool.oldest_age() for w in self._workers.values()), default=0.0)

    def sent(self) -> list[float]:
        """When each request sent in a batch and not yet answered was first sent (epoch s)."""
        with self._lock:
            workers = list(self._workers.values())
        return [i.first_sent for w in workers for i in list(w._items.values()) if i.first_sent is not None]

    def _warn(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning("%s", message)

    def _worker(self) -> _Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            worker = self._workers.get(loop)
            if worker is not None:
                return worker
            orphans: list[Lease] = []
            for old in [lp for lp in self._workers if lp.is_closed()]:
                gone = self._workers.pop(old)
                self._retired_batches += gone.batches_created
                orphans.append(gone.lease)
            worker = _Worker(
                self.journal, Lease.new(self.lease_s), poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval, dedupe_window_s=self.dedupe_window_s,
                create_grace_s=self.create_grace_s, warn=self._warn, orphans=orphans,
            )  # fmt: skip
            worker.warm = self.warm
            self._workers[loop] = worker
            return worker

    def _intake(
        self,
        params_list: Sequence[dict[str, Any]],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        call_site: str | None,
        keys: Sequence[str | None],
    ) -> tuple[_Worker, list[Item]]:
        """This loop's worker and the items, or :class:`NotHandedOver` (nothing sent: go direct)."""
        try:
            worker = self._worker()
            return worker, worker.items(params_list, plan, client, call_site, keys)
        except NotHandedOver:
            raise
        except Exception as exc:
            raise NotHandedOver(f"the batch path failed before sending: {exc!r}") from exc

    # -- entry points ---------------------------------------------------------------------

    async def answer_one(
        self,
        params: dict[str, Any],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        call_site: str | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Pool one request (``accumulate``); resolves exactly once, with its own result.

        Raises :class:`NotHandedOver` (nothing was sent: send it direct, e.g. the journal
        failed or the request cannot go through a batch), the SDK's exception for a
        request the API rejects, or :class:`BatchItemError`.
        """
        worker, [item] = self._intake([params], plan, client, call_site, [idempotency_key])
        [(future, paid)] = await worker.attach([item], pooled=True, keyed=idempotency_key is not None)
        try:
            message, batch_id = await asyncio.shield(future)
        finally:
            fill, wait_ms = worker.pool_exits.pop(item.hash, (None, None))
        return Answer(message, batch_id, paid, pool_fill=fill, pool_wait_ms=wait_ms)

    async def submit_one(
        self,
        params: dict[str, Any],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        call_site: str | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """:meth:`answer_one`'s message."""
        answer = await self.answer_one(
            params, plan, client, call_site=call_site, idempotency_key=idempotency_key
        )
        return answer.message

    async def answer_many(
        self,
        params_list: list[dict[str, Any]],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        call_site: str | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> list[Answer | BaseException]:
        """Send ``params_list`` as batches now (split at the API limits); answers in input order,
        an exception in place of each item that failed."""
        keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(params_list)
        worker, items = self._intake(params_list, plan, client, call_site, keys)
        attached = await worker.attach(items, pooled=False, keyed=any(k is not None for k in keys))
        del items
        # One shielded gather (not one shield per item): a caller that gives up cancels
        # neither the items nor the gather, and 100,000 items cost no 200,000 extra tasks.
        gathered = asyncio.gather(*(f for f, _ in attached), return_exceptions=True)
        outcomes = await asyncio.shield(gathered)
        return [
            o if isinstance(o, BaseException) else Answer(o[0], o[1], paid)
            for o, (_, paid) in zip(outcomes, attached, strict=True)
        ]

    async def submit_many(
        self,
        params_list: list[dict[str, Any]],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        return_exceptions: bool = False,
        call_site: str | None = None,
    ) -> list[Message | BaseException]:
        """:meth:`answer_many`'s messages; the first failure raises unless ``return_exceptions``."""
        answers = await self.answer_many(params_list, plan, client, call_site=call_site)
        out: list[Message | BaseException] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                if not return_exceptions:
                    raise answer
                out.append(answer)
            else:
                out.append(answer.message)
        return out

    async def resume(self, client_for: ClientFor) -> int:
        """Collect what owners that died left (batches submitted, items never sent).

        Only rows whose owner's lease ran out are taken; a live owner's are its own.
        The journal keeps no API key: ``client_for(credential_fingerprint, base_url)``
        supplies a client for each, or None to leave those rows to someone else.
        Returns the number of batches being collected. Without this call, the first
        request for a credential and endpoint resumes that identity's rows.
        """
        return await self._worker().resume(client_for)

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what is pooled, wait for every item to settle, close the journal.

        With ``timeout``, stop waiting after that many seconds: unfinished items fail
        with ``BatchItemError(failure="closed")``, stay in the journal and are released,
        so a resume (here or in another process) collects them at once. Workers on other
        running loops are closed on their own loop.
        """
        here = asyncio.get_running_loop()
        with self._lock:
            workers = list(self._workers.items())
        for loop, worker in workers:
            try:
                if loop is here:
                    await worker.aclose(timeout)
                elif loop.is_running():
                    remote = asyncio.run_coroutine_threadsafe(worker.aclose(timeout), loop)
                    await asyncio.wait_for(
                        asyncio.wrap_future(remote), None if timeout is None else timeout + 5
                    )
                else:
                    await asyncio.to_thread(self.journal.release, worker.lease, None)
            except Exception as exc:
                self._warn(f"close:{type(exc).__name__}", f"closing a batch worker failed: {exc!r}")
        with self._lock:
            self._retired_batches += sum(w.batches_created for _, w in workers)
            self._workers.clear()
        try:
            await asyncio.to_thread(self.journal.close)
        except Exception as exc:
            self._warn(f"close-journal:{type(exc).__name__}", f"closing the batch journal failed: {exc!r}")
