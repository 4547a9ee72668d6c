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
from dataclasses import dataclass, replace
from typing import Any

import anthropic
from anthropic.types import Message
from anthropic.types.messages import MessageBatchIndividualResponse

from engine.decision import BatchPlan
from engine.providers.anthropic.batches._ids import client_identity, custom_id_for, request_hash
from engine.providers.anthropic.batches.accumulator import Accumulator
from engine.providers.anthropic.batches.client import BatchClient, retry_after_s
from engine.providers.anthropic.batches.errors import BatchItemError
from engine.providers.anthropic.batches.journal import Journal, JournalEntry, Outcome
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["BatchService"]

logger = logging.getLogger("llm_policy.batches")

PoolKey = tuple[str, str]  # (credential fingerprint, base URL)
RESULT_CHUNK = 500  # result lines written to the journal per transaction
RESULT_STREAM_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class _Item:
    """An item in flight in this process."""

    hash: str
    custom_id: str
    params: dict[str, Any]
    plan: BatchPlan
    client: anthropic.AsyncAnthropic
    credential: str
    base_url: str
    call_site: str | None = None
    attempts: int = 0

    @property
    def key(self) -> PoolKey:
        return (self.credential, self.base_url)

    def entry(self) -> JournalEntry:
        return JournalEntry(
            request_hash=self.hash,
            custom_id=self.custom_id,
            credential=self.credential,
            base_url=self.base_url,
            state="pending",
            attempts=self.attempts,
            call_site=self.call_site,
            retries=self.plan.retries,
            on_failure=self.plan.on_failure,
            params=self.params,
        )


def _consume(future: asyncio.Future[Message]) -> None:
    """Mark an exception as seen: the item may have no caller left to await it."""
    if not future.cancelled():
        future.exception()


class BatchService:
    """Routes requests through Message Batches durably; see the module docstring."""

    def __init__(
        self, journal: Journal, *, poll_interval: float = 1.0, max_poll_interval: float = 30.0
    ) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        limits = capabilities().limits
        self._pool: Accumulator[PoolKey, _Item] = Accumulator(
            self._flush_pool, max_requests_cap=int(limits["batch_max_requests"])
        )
        self._futures: dict[str, asyncio.Future[Message]] = {}
        self._items: dict[str, _Item] = {}
        self._watched: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_created = 0

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
        results = await asyncio.gather(
            *(asyncio.shield(f) for f in futures), return_exceptions=return_exceptions
        )
        return list(results)

    async def resume(self, client_for: Callable[[str, str], anthropic.AsyncAnthropic | None]) -> int:
        """Collect batches submitted but not collected (and send items never submitted).

        The journal keeps no API key: ``client_for(credential_fingerprint, base_url)``
        supplies a client for each, or None to leave those items for later.
        Returns the number of batches being collected.
        """
        resumed = 0
        for batch_id, credential, base_url in self.journal.open_batches():
            client = client_for(credential, base_url)
            if client is not None and batch_id not in self._watched:
                self._watch(batch_id, client, self._members_from_journal(batch_id), deadline_s=None)
                resumed += 1
        waiting: dict[PoolKey, list[_Item]] = {}
        for entry in self.journal.pending():
            client = client_for(entry.credential, entry.base_url)
            if client is None or entry.request_hash in self._futures or entry.params is None:
                continue
            waiting.setdefault((entry.credential, entry.base_url), []).append(self._item_from(entry, client))
        for items in waiting.values():
            self._track(items)
            self._spawn(self._submit(items))
        return resumed

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what is pooled, wait for every item to settle, close the journal.

        With ``timeout``, stop waiting after that many seconds: unfinished batches
        stay in the journal and :meth:`resume` collects them on the next start.
        """
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
    ) -> _Item:
        if params.get("stream"):
            raise ValueError("a streaming request cannot go through a batch: send it direct")
        credential, base_url = client_identity(client)
        digest = request_hash(params, credential, base_url)
        return _Item(digest, custom_id_for(digest), params, plan, client, credential, base_url, call_site)

    def _item_from(self, entry: JournalEntry, client: anthropic.AsyncAnthropic) -> _Item:
        plan = BatchPlan("accumulate", retries=entry.retries, on_failure=entry.on_failure)  # type: ignore[arg-type]
        return _Item(
            entry.request_hash, entry.custom_id, entry.params or {}, plan, client,
            entry.credential, entry.base_url, entry.call_site, entry.attempts,
        )  # fmt: skip

    def _attach(self, items: Sequence[_Item], *, pooled: bool) -> list[asyncio.Future[Message]]:
        """A future per item: answered from the journal, joined to one in flight, or new."""
        fresh = {i.hash for i in items if i.hash not in self._futures}
        known = self.journal.get_many(sorted(fresh)) if fresh else {}
        new: dict[str, _Item] = {}
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

    def _future(self, digest: str) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        future.add_done_callback(lambda _f: self._forget(digest))
        self._futures[digest] = future
        return future

    def _forget(self, digest: str) -> None:
        self._futures.pop(digest, None)
        self._items.pop(digest, None)

    def _track(self, items: Sequence[_Item]) -> None:
        for item in items:
            if item.hash not in self._futures:
                self._future(item.hash)
            self._items[item.hash] = item

    def _route(self, items: list[_Item], *, pooled: bool) -> None:
        if pooled:
            for item in items:
                self._pool.add(
                    item.key, item, max_requests=item.plan.max_requests, max_wait_s=item.plan.max_wait_s
                )
            return
        by_key: dict[PoolKey, list[_Item]] = {}
        for item in items:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group))

    def _flush_pool(self, _key: PoolKey, items: list[_Item]) -> None:
        self._spawn(self._submit(items))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("batch task failed", exc_info=task.exception())

    def _batch_client(self, client: anthropic.AsyncAnthropic) -> BatchClient:
        return BatchClient(client, poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval)

    # -- submission -----------------------------------------------------------------------

    async def _submit(self, items: list[_Item]) -> None:
        """Create batches for ``items`` (split at the limits) and start collecting each."""
        batches = self._batch_client(items[0].client)
        by_id = {i.custom_id: i for i in items}
        requests = ({"custom_id": i.custom_id, "params": i.params} for i in items)
        for chunk in batches.split(requests):
            group = [by_id[r["custom_id"]] for r in chunk]
            await self._create(batches, chunk, group)

    async def _create(self, batches: BatchClient, chunk: list[dict[str, Any]], group: list[_Item]) -> None:
        try:
            batch = await batches.create(chunk)
        except anthropic.APIStatusError as exc:
            await self._refused(batches, chunk, group, exc)
            return
        except anthropic.APIConnectionError as exc:
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
        group: list[_Item],
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
        finally:
            self._watched.discard(batch_id)
        if failed:
            await self._failed_hashes(failed, batches.client)

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
                failed.append((digest, line.result.type, _describe(line)))
            if len(done) >= RESULT_CHUNK:
                self._succeed(done)
                done = []
        self._succeed(done)

    def _succeed(self, done: list[tuple[str, Message]]) -> None:
        """Journal first (durable), then answer the callers."""
        if not done:
            return
        outcomes = [
            Outcome(h, "succeeded", self._attempts(h), result=m.model_dump(mode="json", exclude_none=True))
            for h, m in done
        ]
        self.journal.record(outcomes)
        for digest, message in done:
            future = self._futures.get(digest)
            if future is not None and not future.done():
                future.set_result(message)

    def _attempts(self, digest: str) -> int:
        item = self._items.get(digest)
        return item.attempts if item is not None else 0

    # -- failure handling -----------------------------------------------------------------

    async def _failed_hashes(
        self, failed: list[tuple[str, str, str]], client: anthropic.AsyncAnthropic
    ) -> None:
        """Items of a collected batch that did not succeed: rebuild what is not in memory, then retry."""
        missing = [h for h, _, _ in failed if h not in self._items]
        entries = self.journal.get_many(missing) if missing else {}
        for digest in missing:
            entry = entries.get(digest)
            if entry is not None and entry.params is not None and not entry.final:
                self._track([self._item_from(entry, client)])
        by_failure: dict[tuple[str, str], list[_Item]] = {}
        for digest, failure, detail in failed:
            item = self._items.get(digest)
            if item is not None:
                by_failure.setdefault((failure, detail), []).append(item)
        for (failure, detail), items in by_failure.items():
            await self._failed(items, failure, detail, delay=0.0)

    async def _failed(self, items: list[_Item], failure: str, detail: str, *, delay: float) -> None:
        """Count an attempt; retry on their own those with retries left, give up on the rest."""
        retry: list[_Item] = []
        for item in items:
            attempts = item.attempts + 1
            if attempts <= item.plan.retries:
                retry.append(replace(item, attempts=attempts))
            else:
                self._spawn(self._give_up(item, failure, detail, attempts=attempts))
        if not retry:
            return
        logger.info("%d batch item(s) %s (%s): retrying", len(retry), failure, detail)
        self.journal.record([Outcome(i.hash, "pending", i.attempts) for i in retry])
        self._track(retry)
        if delay:
            await asyncio.sleep(delay)
        by_key: dict[PoolKey, list[_Item]] = {}
        for item in retry:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group))

    async def _give_up(self, item: _Item, failure: str, detail: str, *, attempts: int) -> None:
        """Retries spent: per onFailure, send it direct or fail it with a clear error."""
        if item.plan.on_failure == "direct":
            try:
                message = await item.client.messages.create(**item.params)
            except anthropic.APIError as exc:
                self._fail(
                    item, "direct", f"{failure} in the batch ({detail}); direct call failed: {exc}", attempts
                )
                return
            self.journal.record(
                [
                    Outcome(
                        item.hash,
                        "direct",
                        attempts,
                        result=message.model_dump(mode="json", exclude_none=True),
                    )
                ]
            )
            future = self._futures.get(item.hash)
            if future is not None and not future.done():
                future.set_result(message)
            return
        self._fail(item, failure, detail, attempts)

    def _fail(self, item: _Item, failure: str, detail: str, attempts: int) -> None:
        error = BatchItemError(
            custom_id=item.custom_id,
            request_hash=item.hash,
            failure=failure,
            attempts=attempts,
            detail=detail,
            call_site=item.call_site,
        )
        self.journal.record([Outcome(item.hash, "failed", attempts, error=str(error))])
        future = self._futures.get(item.hash)
        if future is not None and not future.done():
            future.set_exception(error)


def _describe(line: MessageBatchIndividualResponse) -> str:
    result = line.result
    if result.type == "errored":
        inner = result.error.error
        return f"{inner.type}: {inner.message}"
    return ""  # expired / canceled: the failure name says it all
