"""Items in flight on one event loop: their futures, their journal outcomes, and how they end.

The base of the service's per-loop worker: intake and submission live in
``service.py``, settling (success, retry, fallback, error) here. Results go to the
journal first, then to the waiting caller, so an answer is never known only in
memory; if the journal cannot be written the caller is answered all the same (the
answer was paid for), and the cause is logged once.

Every future is answered, whatever happens to the task that holds it: a task that
raises or is canceled fails the futures it owns with a :class:`BatchItemError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anthropic
from anthropic.types import Message

from engine.decision import BatchPlan
from engine.journal import Journal, JournalEntry, Lease, Outcome
from engine.providers.anthropic.batches.client import BatchClient
from engine.providers.anthropic.batches.errors import PERMANENT_ERRORS, BatchItemError, sdk_error
from engine.providers.anthropic.sdk_args import sdk_kwargs

__all__ = ["Failure", "InFlight", "Item", "PoolKey", "Settled"]

logger = logging.getLogger("llm_policy.batches")

T = TypeVar("T")
#: (credential fingerprint, base URL, headers fingerprint): one pool and one batch never mix these.
PoolKey = tuple[str, str, str]
#: What an item's future resolves to: its answer and the batch that carried it (None: direct).
Settled = tuple[Message, str | None]


@dataclass(frozen=True, slots=True)
class Failure:
    """How one item of a batch did not succeed: ``kind`` is errored/expired/canceled/missing."""

    digest: str
    kind: str
    detail: str = ""
    error_type: str | None = None


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
    headers_key: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    call_site: str | None = None
    attempts: int = 0
    first_sent: float | None = None

    @property
    def key(self) -> PoolKey:
        return (self.credential, self.base_url, self.headers_key)

    def entry(self) -> JournalEntry:
        return JournalEntry(
            request_hash=self.hash, custom_id=self.custom_id, credential=self.credential,
            base_url=self.base_url, state="pending", attempts=self.attempts, call_site=self.call_site,
            retries=self.plan.retries, on_failure=self.plan.on_failure, params=self.params,
        )  # fmt: skip

    def past_deadline(self, now: float) -> bool:
        return self.first_sent is not None and now - self.first_sent > self.plan.deadline_s


def _consume(future: asyncio.Future[Settled]) -> None:
    """Mark an exception as seen: the item may have no caller left to await it."""
    if not future.cancelled():
        future.exception()


class InFlight:
    """State shared by intake and settlement: one future and one item per request hash."""

    def __init__(
        self,
        journal: Journal,
        lease: Lease,
        *,
        poll_interval: float,
        max_poll_interval: float,
        warn: Callable[[str, str], None],
    ) -> None:
        self.journal = journal
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._warn = warn
        self._futures: dict[str, asyncio.Future[Settled]] = {}
        self._items: dict[str, Item] = {}
        self._tasks: dict[asyncio.Task[None], tuple[str, ...]] = {}

    async def _submit(self, items: list[Item]) -> None:
        raise NotImplementedError

    # -- journal I/O: in a worker thread, never on the event loop --------------------------

    async def _io(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(work, *args)

    async def _io_quiet(self, what: str, work: Callable[..., Any], *args: Any) -> bool:
        """A journal write the callers do not depend on: a failure is logged once, not raised."""
        try:
            await self._io(work, *args)
        except Exception as exc:
            self._warn(
                f"journal:{what}:{type(exc).__name__}",
                f"batch journal: {what} failed, going on from memory: {exc!r}",
            )
            return False
        return True

    # -- futures and tasks ------------------------------------------------------------------

    def _item_from(self, entry: JournalEntry, client: anthropic.AsyncAnthropic) -> Item:
        plan = BatchPlan("accumulate", retries=entry.retries, on_failure=entry.on_failure)  # type: ignore[arg-type]
        return Item(
            entry.request_hash, entry.custom_id, entry.params or {}, plan, client, entry.credential,
            entry.base_url, call_site=entry.call_site, attempts=entry.attempts,
            first_sent=entry.created_at or None,
        )  # fmt: skip

    def _future(self, digest: str) -> asyncio.Future[Settled]:
        future: asyncio.Future[Settled] = asyncio.get_running_loop().create_future()
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

    def _spawn(self, coro: Coroutine[Any, Any, None], owns: Iterable[str] = ()) -> asyncio.Task[None]:
        """Run ``coro``; if it raises or is canceled, the futures in ``owns`` are failed."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks[task] = tuple(owns)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        owned = self._tasks.pop(task, ())
        if task.cancelled():
            self._fail_all(owned, "closed", "the batch service closed before this item ended")
            return
        error = task.exception()
        if error is not None:
            logger.error("batch task failed", exc_info=error)
            self._fail_all(owned, "internal", f"the engine failed while holding it: {error!r}")

    def _fail_all(self, digests: Iterable[str], failure: str, detail: str) -> None:
        for digest in digests:
            future = self._futures.get(digest)
            if future is not None and not future.done():
                item = self._items.get(digest)
                future.set_exception(
                    BatchItemError(
                        custom_id=digest[:64], request_hash=digest, failure=failure,
                        attempts=item.attempts if item else 0, detail=detail,
                        call_site=item.call_site if item else None,
                    )
                )  # fmt: skip

    def _batch_client(self, item: Item) -> BatchClient:
        return BatchClient(
            item.client,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            headers=dict(item.headers) or None,
        )

    def _resolve(self, digest: str, outcome: Message | BaseException, batch_id: str | None = None) -> None:
        future = self._futures.get(digest)
        if future is None or future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result((outcome, batch_id))

    async def _succeed(self, done: list[tuple[str, Message]], batch_id: str | None = None) -> None:
        """Journal first (durable), then answer the callers."""
        if not done:
            return
        outcomes = [
            Outcome(h, "succeeded", self._attempts(h), result=m.model_dump(mode="json", exclude_none=True))
            for h, m in done
        ]
        await self._io_quiet("recording results", self.journal.record, outcomes)
        for digest, message in done:
            self._resolve(digest, message, batch_id)

    def _attempts(self, digest: str) -> int:
        item = self._items.get(digest)
        return item.attempts if item is not None else 0

    # -- failure handling -----------------------------------------------------------------

    async def _failed_lines(self, failed: list[Failure], client: anthropic.AsyncAnthropic) -> None:
        """Items of a collected batch that did not succeed: rebuild what is not in memory, then settle."""
        missing = [f.digest for f in failed if f.digest not in self._items]
        entries = await self._io(self.journal.get_many, missing) if missing else {}
        for digest in missing:
            entry = entries.get(digest)
            if entry is not None and entry.params is not None and not entry.final:
                self._track([self._item_from(entry, client)])
        retry: dict[tuple[str, str], list[Item]] = {}
        for failure in failed:
            item = self._items.get(failure.digest)
            if item is None:
                continue
            if failure.error_type in PERMANENT_ERRORS:
                await self._reject(item, failure)
            else:
                retry.setdefault((failure.kind, failure.detail), []).append(item)
        for (kind, detail), items in retry.items():
            await self._failed(items, kind, detail, delay=0.0)

    async def _reject(self, item: Item, failure: Failure) -> None:
        """A permanent item error: the caller gets the SDK's exception for it, now."""
        error = sdk_error(item.client, failure.error_type or "api_error", failure.detail)
        await self._io_quiet(
            "recording a rejection",
            self.journal.record,
            [Outcome(item.hash, "failed", item.attempts + 1, error=str(error))],
        )
        self._resolve(item.hash, error)

    async def _failed(self, items: list[Item], failure: str, detail: str, *, delay: float) -> None:
        """Count an attempt; retry on their own those with retries and time left, give up on the rest."""
        now = time.time()
        retry: list[Item] = []
        for item in items:
            attempts = item.attempts + 1
            if attempts <= item.plan.retries and not item.past_deadline(now):
                retry.append(replace(item, attempts=attempts))
            else:
                why = "deadline" if attempts <= item.plan.retries else failure
                self._spawn(self._give_up(item, why, detail, attempts=attempts), owns=[item.hash])
        if not retry:
            return
        logger.info("%d batch item(s) %s (%s): retrying", len(retry), failure, detail)
        await self._io_quiet(
            "recording a retry", self.journal.record, [Outcome(i.hash, "pending", i.attempts) for i in retry]
        )
        self._track(retry)
        if delay:
            await asyncio.sleep(delay)
        by_key: dict[PoolKey, list[Item]] = {}
        for item in retry:
            by_key.setdefault(item.key, []).append(item)
        for group in by_key.values():
            self._spawn(self._submit(group), owns=[i.hash for i in group])

    async def _give_up(self, item: Item, failure: str, detail: str, *, attempts: int) -> None:
        """Retries or time spent: per onFailure, send it direct or fail it with a clear error.

        A direct call that fails gives the caller that very exception: what the
        unwrapped model would have raised.
        """
        if item.plan.on_failure != "direct":
            await self._fail(item, failure, detail, attempts)
            return
        try:
            create = item.client.messages.create
            message = await create(
                **sdk_kwargs(create, item.params, extra_headers=dict(item.headers) or None)
            )
        except Exception as exc:
            await self._io_quiet(
                "recording a failure",
                self.journal.record,
                [Outcome(item.hash, "failed", attempts, error=f"direct call failed: {exc!r}")],
            )
            self._resolve(item.hash, exc)
            return
        result = message.model_dump(mode="json", exclude_none=True)
        await self._io_quiet(
            "recording a direct answer",
            self.journal.record,
            [Outcome(item.hash, "direct", attempts, result=result)],
        )
        self._resolve(item.hash, message)

    async def _fail(self, item: Item, failure: str, detail: str, attempts: int) -> None:
        error = BatchItemError(
            custom_id=item.custom_id, request_hash=item.hash, failure=failure, attempts=attempts,
            detail=detail, call_site=item.call_site,
        )  # fmt: skip
        await self._io_quiet(
            "recording a failure",
            self.journal.record,
            [Outcome(item.hash, "failed", attempts, error=str(error))],
        )
        self._resolve(item.hash, error)
