"""Durable Message Batches for single calls (``accumulate``) and explicit batches.

The service owns every batch item from the moment a caller hands it over until
its result is in the journal, independently of the caller: a caller that gives up
(timeout, cancellation) does not cancel its item, and the result still lands in
the journal, where a later identical request finds it instead of paying again.

Lifecycle of one item::

    submit_one / submit_many
      └─ journal hit (succeeded/direct)? answer from it, no network
      └─ same request in flight?          join it
      └─ journal: pending ─▶ pool (accumulate) or now (explicit) ─▶ batches.create
            ─▶ journal: submitted ─▶ poll ─▶ stream results ─▶ journal: succeeded
            failed item (errored/expired/canceled/missing) or refused submission:
            retried on its own up to plan.retries, then onFailure: direct
            (messages.create, journal: direct) or error (journal: failed, BatchItemError)

Everything runs on the event loop that first uses the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import anthropic
from anthropic.types import Message

from engine.decision import BatchPlan
from engine.providers.anthropic.batches._ids import client_identity, custom_id_for, request_hash
from engine.providers.anthropic.batches._inflight import InFlight, Item, PoolKey, describe
from engine.providers.anthropic.batches._reconcile import adoptable_results
from engine.providers.anthropic.batches.accumulator import Accumulator
from engine.providers.anthropic.batches.client import BatchClient, retry_after_s
from engine.providers.anthropic.batches.errors import BatchItemError
from engine.providers.anthropic.batches.journal import Journal
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["BatchService"]

logger = logging.getLogger("llm_policy.batches")

RESULT_CHUNK = 500  # result lines written to the journal per transaction
RESULT_STREAM_ATTEMPTS = 5


class BatchService(InFlight):
    """Routes requests through Message Batches durably; see the module docstring."""

    def __init__(
        self, journal: Journal, *, poll_interval: float = 1.0, max_poll_interval: float = 30.0
    ) -> None:
        super().__init__(journal, poll_interval=poll_interval, max_poll_interval=max_poll_interval)
        self.batches_created = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset_memory()

    def _reset_memory(self) -> None:
        limits = capabilities().limits
        self._pool: Accumulator[PoolKey, Item] = Accumulator(
            self._flush_pool, max_requests_cap=int(limits["batch_max_requests"])
        )
        self._futures.clear()
        self._items.clear()
        self._tasks.clear()
        self._watched: set[str] = set()
        self._resumed: set[PoolKey] = set()

    def _bind_loop(self) -> None:
        """Futures and timers belong to one event loop. Used from a new one (the old one
        closed, e.g. between test cases or after ``asyncio.run`` returned), the service
        forgets what it held in memory; the journal holds the rest, and first use per
        identity resumes it on the new loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                logger.info("batch service moved to a new event loop: resuming from the journal")
                self._reset_memory()
            self._loop = loop

    # -- entry points ---------------------------------------------------------------------

    async def submit_one(
        self,
        params: dict[str, Any],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        call_site: str | None = None,
    ) -> Message:
        """Pool one request (``accumulate``); resolves exactly once, with its own result."""
        [future] = self._attach([self._item(params, plan, client, call_site)], pooled=True)
        return await asyncio.shield(future)

    async def submit_many(
        self,
        params_list: list[dict[str, Any]],
        plan: BatchPlan,
        client: anthropic.AsyncAnthropic,
        *,
        return_exceptions: bool = False,
        call_site: str | None = None,
    ) -> list[Message | BaseException]:
        """Send ``params_list`` as batches now (split at the API limits); results in input order."""
        items = [self._item(p, plan, client, call_site) for p in params_list]
        futures = self._attach(items, pooled=False)
        del items
        # One shielded gather (not one shield per item): a caller that gives up cancels
        # neither the items nor the gather, and 100,000 items cost no 200,000 extra tasks.
        gathered = asyncio.gather(*futures, return_exceptions=return_exceptions)
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen even if nobody waits
        return list(await asyncio.shield(gathered))

    async def resume(self, client_for: Callable[[str, str], anthropic.AsyncAnthropic | None]) -> int:
        """Collect batches submitted but not collected (and send items never submitted).

        The journal keeps no API key: ``client_for(credential_fingerprint, base_url)``
        supplies a client for each, or None to leave those items for later.
        Returns the number of batches being collected. Without this call, the first
        request for a credential and endpoint resumes that identity's leftovers
        with the request's own client.
        """
        self._bind_loop()
        return self._resume(client_for)

    def _resume(self, client_for: Callable[[str, str], anthropic.AsyncAnthropic | None]) -> int:
        resumed = 0
        for batch_id, credential, base_url in self.journal.open_batches():
            client = client_for(credential, base_url)
            if client is None:
                continue
            self._resumed.add((credential, base_url))
            if batch_id not in self._watched:
                self._watch(batch_id, client, self._members_from_journal(batch_id), deadline_s=None)
                resumed += 1
        waiting: dict[PoolKey, list[Item]] = {}
        since: dict[PoolKey, float] = {}
        for entry in self.journal.pending():
            client = client_for(entry.credential, entry.base_url)
            if client is None or entry.request_hash in self._futures or entry.params is None:
                continue
            key = (entry.credential, entry.base_url)
            waiting.setdefault(key, []).append(self._item_from(entry, client))
            since[key] = min(since.get(key, entry.updated_at), entry.updated_at)
        for key, items in waiting.items():
            self._resumed.add(key)
            self._track(items)
            self._spawn(self._reconcile_then_submit(items, since[key]))
        return resumed

    def _resume_on_first_use(self, items: Sequence[Item]) -> None:
        """The first request of an identity picks up what an earlier process left for it."""
        for item in items:
            if item.key not in self._resumed:
                self._resumed.add(item.key)
                self._resume(_only(item.key, item.client))

    async def _reconcile_then_submit(self, items: list[Item], since: float) -> None:
        """Items journaled but never marked submitted: adopt results the API already has, send the rest."""
        wanted = {i.custom_id: i for i in items}
        batches = self._batch_client(items[0].client)
        adopted: list[tuple[str, Message]] = []
        async for line in adoptable_results(batches, set(wanted), since):
            if line.result.type == "succeeded":
                adopted.append((wanted.pop(line.custom_id).hash, line.result.message))
        if adopted:
            logger.warning(
                "%d item(s) were already in a batch the API accepted: answered from it", len(adopted)
            )
            self._succeed(adopted)
        if wanted:
            await self._submit(list(wanted.values()))

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what is pooled, wait for every item to settle, close the journal.

        With ``timeout``, stop waiting after that many seconds: unfinished batches
        stay in the journal and :meth:`resume` collects them on the next start.
        """
        self._bind_loop()
        self._pool.flush_all()
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.journal.close()

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- intake ---------------------------------------------------------------------------

    def _item(
        self, params: dict[str, Any], plan: BatchPlan, client: anthropic.AsyncAnthropic, call_site: str | None
    ) -> Item:
        if params.get("stream"):
            raise ValueError("a streaming request cannot go through a batch: send it direct")
        credential, base_url = client_identity(client)
        digest = request_hash(params, credential, base_url)
        return Item(digest, custom_id_for(digest), params, plan, client, credential, base_url, call_site)

    def _attach(self, items: Sequence[Item], *, pooled: bool) -> list[asyncio.Future[Message]]:
        """A future per item: answered from the journal, joined to one in flight, or new."""
        self._bind_loop()
        self._resume_on_first_use(items)
        fresh = {i.hash for i in items if i.hash not in self._futures}
        known = self.journal.get_many(sorted(fresh)) if fresh else {}
        new: dict[str, Item] = {}
        for item in items:
            if item.hash in self._futures:
                continue
            future = self._future(item.hash)
            entry = known.get(item.hash)
            if entry is not None and entry.state in ("succeeded", "direct") and entry.result is not None:
                future.set_result(Message.model_validate(entry.result))
            elif entry is not None and entry.state == "submitted" and entry.batch_id:
                self._items[item.hash] = replace(item, attempts=entry.attempts)
                if entry.batch_id not in self._watched:
                    self._watch(entry.batch_id, item.client, self._members_from_journal(entry.batch_id), None)
            else:
                new[item.hash] = replace(
                    item, attempts=entry.attempts if entry and entry.state == "pending" else 0
                )
        if new:
            self.journal.add([i.entry() for i in new.values()])
            self._items.update(new)
            self._route(list(new.values()), pooled=pooled)
        return [self._futures[i.hash] for i in items]

    def _route(self, items: list[Item], *, pooled: bool) -> None:
        if pooled:
            for item in items:
                self._pool.add(
                    item.key, item, max_requests=item.plan.max_requests, max_wait_s=item.plan.max_wait_s
                )
            return
        by_key: dict[PoolKey, list[Item]] = {}
        for item in items:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group))

    def _flush_pool(self, _key: PoolKey, items: list[Item]) -> None:
        self._spawn(self._submit(items))

    # -- submission -----------------------------------------------------------------------

    async def _submit(self, items: list[Item]) -> None:
        """Create batches for ``items`` (split at the limits) and start collecting each."""
        batches = self._batch_client(items[0].client)
        by_id = {i.custom_id: i for i in items}
        requests = ({"custom_id": i.custom_id, "params": i.params} for i in items)
        for chunk in batches.split(requests):
            group = [by_id[r["custom_id"]] for r in chunk]
            await self._create(batches, chunk, group)

    async def _create(self, batches: BatchClient, chunk: list[dict[str, Any]], group: list[Item]) -> None:
        try:
            batch = await batches.create(chunk)
        except anthropic.APIStatusError as exc:
            await self._refused(batches, chunk, group, exc)
            return
        except (anthropic.APIError, TypeError, ValueError) as exc:  # connection lost, unserialisable params
            await self._failed(group, "submission", f"batch not accepted: {exc}", delay=self.poll_interval)
            return
        self.batches_created += 1
        self.journal.mark_submitted([i.hash for i in group], batch.id)
        deadline = min(i.plan.deadline_s for i in group)
        self._watch(batch.id, batches.client, {i.custom_id: i.hash for i in group}, deadline)

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
        if exc.status_code < 500 and exc.status_code not in (408, 409, 429):
            # Sending the same batch again would be refused again: fall back at once.
            for item in group:
                self._spawn(self._give_up(item, "submission", detail, attempts=item.attempts + 1))
            return
        await self._failed(group, "submission", detail, delay=retry_after_s(exc) or self.poll_interval)

    # -- collection -----------------------------------------------------------------------

    def _members_from_journal(self, batch_id: str) -> dict[str, str]:
        return {e.custom_id: e.request_hash for e in self.journal.items_in_batch(batch_id)}

    def _watch(
        self,
        batch_id: str,
        client: anthropic.AsyncAnthropic,
        members: dict[str, str],
        deadline_s: float | None,
    ) -> None:
        self._watched.add(batch_id)
        self._spawn(self._collect(batch_id, self._batch_client(client), members, deadline_s))

    async def _collect(
        self, batch_id: str, batches: BatchClient, members: dict[str, str], deadline_s: float | None
    ) -> None:
        """Wait for the batch, stream its results into the journal, handle what failed."""
        try:
            await batches.wait(batch_id, deadline_s=deadline_s)
            failed = await self._read_results(batch_id, batches, members)
        except anthropic.NotFoundError as exc:
            failed = [(h, "missing", f"batch {batch_id} not found: {exc.message}") for h in members.values()]
        except (anthropic.APIError, ValueError) as exc:
            self._abandon(batch_id, members, exc)
            return
        finally:
            self._watched.discard(batch_id)
        if failed:
            await self._failed_hashes(failed, batches.client)

    def _abandon(self, batch_id: str, members: dict[str, str], exc: BaseException) -> None:
        """The batch could not be polled or read: its items may be paid, so never resend them.

        Waiting callers get a clear error; the journal keeps the items ``submitted``,
        so a later resume (or an identical request) collects the batch.
        """
        logger.warning("batch %s could not be collected (%s): left in the journal for resume", batch_id, exc)
        detail = f"batch {batch_id} could not be collected ({exc}); the journal keeps it for resume"
        for custom_id, digest in members.items():
            future = self._futures.get(digest)
            if future is None or future.done():
                continue
            item = self._items.get(digest)
            future.set_exception(
                BatchItemError(
                    custom_id=custom_id,
                    request_hash=digest,
                    failure="uncollected",
                    attempts=self._attempts(digest),
                    detail=detail,
                    call_site=item.call_site if item else None,
                )
            )

    async def _read_results(
        self, batch_id: str, batches: BatchClient, members: dict[str, str]
    ) -> list[tuple[str, str, str]]:
        remaining = dict(members)
        failed: list[tuple[str, str, str]] = []
        for attempt in range(RESULT_STREAM_ATTEMPTS):
            try:
                await self._stream(batches, batch_id, remaining, failed)
                break
            except (anthropic.APIError, ValueError) as exc:
                if attempt == RESULT_STREAM_ATTEMPTS - 1:
                    raise
                logger.info("reading results of %s: %s; reading again", batch_id, exc)
                await asyncio.sleep(retry_after_s(exc) or self.poll_interval)
        failed.extend((h, "missing", f"absent from the results of {batch_id}") for h in remaining.values())
        return failed

    async def _stream(
        self,
        batches: BatchClient,
        batch_id: str,
        remaining: dict[str, str],
        failed: list[tuple[str, str, str]],
    ) -> None:
        done: list[tuple[str, Message]] = []
        async for line in batches.results(batch_id):
            digest = remaining.pop(line.custom_id, None)
            if digest is None:
                continue
            if line.result.type == "succeeded":
                done.append((digest, line.result.message))
            else:
                failed.append((digest, line.result.type, describe(line)))
            if len(done) >= RESULT_CHUNK:
                self._succeed(done)
                done = []
        self._succeed(done)


def _only(
    key: PoolKey, client: anthropic.AsyncAnthropic
) -> Callable[[str, str], anthropic.AsyncAnthropic | None]:
    """A ``client_for`` that knows one identity."""
    return lambda fingerprint, base_url: client if (fingerprint, base_url) == key else None
