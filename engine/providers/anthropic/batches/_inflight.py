"""Items in flight: their futures, their journal outcomes, and what happens when they fail.

The base of :class:`~engine.providers.anthropic.batches.service.BatchService`:
intake and submission live there, settling (success, retry, fallback, error) here.
Results go to the journal first, then to the waiting caller, so an answer is never
known only in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anthropic
from anthropic.types import Message
from anthropic.types.messages import MessageBatchIndividualResponse

from engine.decision import BatchPlan
from engine.providers.anthropic.batches.client import BatchClient
from engine.providers.anthropic.batches.errors import BatchItemError
from engine.providers.anthropic.batches.journal import Journal, JournalEntry, Outcome

__all__ = ["InFlight", "Item", "PoolKey", "describe"]

logger = logging.getLogger("llm_policy.batches")

PoolKey = tuple[str, str]  # (credential fingerprint, base URL)


@dataclass(frozen=True, slots=True)
class Item:
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


class InFlight:
    """State shared by intake and settlement: one future and one item per request hash."""

    def __init__(self, journal: Journal, *, poll_interval: float, max_poll_interval: float) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._futures: dict[str, asyncio.Future[Message]] = {}
        self._items: dict[str, Item] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def _submit(self, items: list[Item]) -> None:
        raise NotImplementedError

    def _item_from(self, entry: JournalEntry, client: anthropic.AsyncAnthropic) -> Item:
        plan = BatchPlan("accumulate", retries=entry.retries, on_failure=entry.on_failure)  # type: ignore[arg-type]
        return Item(
            entry.request_hash, entry.custom_id, entry.params or {}, plan, client,
            entry.credential, entry.base_url, entry.call_site, entry.attempts,
        )  # fmt: skip

    def _future(self, digest: str) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        future.add_done_callback(lambda _f: self._forget(digest))
        self._futures[digest] = future
        return future

    def _forget(self, digest: str) -> None:
        self._futures.pop(digest, None)
        self._items.pop(digest, None)

    def _track(self, items: Sequence[Item]) -> None:
        for item in items:
            if item.hash not in self._futures:
                self._future(item.hash)
            self._items[item.hash] = item

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("batch task failed", exc_info=task.exception())

    def _batch_client(self, client: anthropic.AsyncAnthropic) -> BatchClient:
        return BatchClient(client, poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval)

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
        by_failure: dict[tuple[str, str], list[Item]] = {}
        for digest, failure, detail in failed:
            item = self._items.get(digest)
            if item is not None:
                by_failure.setdefault((failure, detail), []).append(item)
        for (failure, detail), items in by_failure.items():
            await self._failed(items, failure, detail, delay=0.0)

    async def _failed(self, items: list[Item], failure: str, detail: str, *, delay: float) -> None:
        """Count an attempt; retry on their own those with retries left, give up on the rest."""
        retry: list[Item] = []
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
        by_key: dict[PoolKey, list[Item]] = {}
        for item in retry:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group))

    async def _give_up(self, item: Item, failure: str, detail: str, *, attempts: int) -> None:
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

    def _fail(self, item: Item, failure: str, detail: str, attempts: int) -> None:
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


def describe(line: MessageBatchIndividualResponse) -> str:
    result = line.result
    if result.type == "errored":
        inner = result.error.error
        return f"{inner.type}: {inner.message}"
    return ""  # expired / canceled: the failure name says it all
