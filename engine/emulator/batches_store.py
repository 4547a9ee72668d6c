"""Message Batches held by one emulator: their records, lifecycle and paging.

Every batch belongs to the API key that created it (another key gets 404, as
another workspace would). Time-driven transitions are applied lazily, whenever a
batch is looked at, against the emulator clock: a batch still unfinished at
``expires_at`` ends with its remaining items ``expired`` (``ended_at`` is the
expiry time), and 29 days after creation its results are archived (``archived_at``
set, results answer 404). Processing itself is done by :mod:`batches_worker`.

The store is shared by the event loop (handlers, workers) and whoever calls
``state.reset()``; one lock guards every mutation.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import threading
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from engine.emulator.batches_cache import BatchCacheRun
from engine.emulator.batches_intake import BatchLimits, Intake
from engine.emulator.batches_spool import LineSpool, SpoolDir
from engine.emulator.errors import invalid_request, not_found
from engine.emulator.state import EmulatorState
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["FATES", "Batch", "BatchStore", "Fate", "batch_store", "rfc3339"]

Status = Literal["in_progress", "canceling", "ended"]
Fate = Literal["succeeded", "errored", "canceled", "expired"]
FATES: tuple[Fate, ...] = ("succeeded", "errored", "canceled", "expired")
_ID_ALPHABET = string.ascii_letters + string.digits
_EXTENSION_KEY = "message_batches"


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as the RFC 3339 UTC text the API uses (``...Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(eq=False)
class Batch:
    """One batch: identity, times (emulator clock), spools and progress."""

    id: str
    api_key: str
    created_at: float
    expires_at: float
    archive_at: float
    items: LineSpool
    custom_ids: list[str]
    order: array[int]
    results: LineSpool
    ready_at: float  # time.monotonic() when processing may start (wall time)
    status: Status = "in_progress"
    done: int = 0  # how many of ``order`` have a result line
    counts: dict[Fate, int] = field(default_factory=lambda: dict.fromkeys(FATES, 0))
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    archived_at: float | None = None
    discarded: bool = False
    task: asyncio.Task[None] | None = None
    cache_run: BatchCacheRun | None = None  # set when processing starts
    total: int = field(init=False)

    def __post_init__(self) -> None:
        self.total = len(self.custom_ids)

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The ``message_batch`` object; ``results_url`` points back at ``base_url``."""
        ended = self.status == "ended"
        counts: dict[str, int] = {"processing": 0 if ended else self.total}
        for fate in FATES:
            counts[fate] = self.counts[fate] if ended else 0
        readable = ended and self.archived_at is None  # archived results have no URL any more
        results_url = f"{base_url.rstrip('/')}/v1/messages/batches/{self.id}/results" if readable else None
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": counts,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "ended_at": rfc3339(self.ended_at),
            "cancel_initiated_at": rfc3339(self.cancel_initiated_at),
            "archived_at": rfc3339(self.archived_at),
            "results_url": results_url,
        }

    def finish(self, fate: Literal["canceled", "expired"], at: float) -> None:
        """End the batch: every item without a result gets ``fate`` (canceled/expired)."""
        for position in range(self.done, self.total):
            self.record(position, fate, _bare_line(self.custom_ids[self.order[position]], fate))
        self.end(at)

    def end(self, at: float) -> None:
        """Mark the batch ended at ``at``; its items, ids and order are no longer needed."""
        if self.cache_run is not None:
            self.cache_run.release()
        self.custom_ids, self.order = [], array("I")
        self.status = "ended"
        self.ended_at = at
        self.items.close()
        self.results.flush()

    def record(self, position: int, fate: Fate, line: bytes) -> None:
        """Store the result line of ``order[position]`` (positions are filled in order)."""
        assert position == self.done, "results are recorded in processing order"
        self.results.append(line)
        self.counts[fate] += 1
        self.done += 1

    def discard(self) -> None:
        self.discarded = True
        self.items.close()
        self.results.close()


def _bare_line(custom_id: str, fate: Fate) -> bytes:
    return json.dumps({"custom_id": custom_id, "result": {"type": fate}}, separators=(",", ":")).encode()


class BatchStore:
    """All batches of one :class:`EmulatorState`; reach it with :func:`batch_store`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.limits = BatchLimits.from_data()
        self.lock = threading.RLock()
        self.spool_dir = SpoolDir()
        self._batches: dict[str, Batch] = {}
        self._rng = random.Random(f"message-batches/{state.config.seed}")

    # -- lifecycle --------------------------------------------------------------------

    def add(self, api_key: str, intake: Intake, latency_s: float, monotonic_now: float) -> Batch:
        """Register a checked batch; its items are processed in a seeded random order."""
        limits = capabilities().limits
        with self.lock:
            batch_id = "msgbatch_01" + "".join(self._rng.choices(_ID_ALPHABET, k=22))
            order = list(range(len(intake.custom_ids)))
            random.Random(f"{self.state.config.seed}/{batch_id}").shuffle(order)
            now = self.state.clock.now()
            batch = Batch(
                id=batch_id,
                api_key=api_key,
                created_at=now,
                expires_at=now + float(limits["batch_expiry_s"]),
                archive_at=now + float(limits["batch_results_retention_s"]),
                items=intake.items,
                custom_ids=intake.custom_ids,
                order=array("I", order),
                results=LineSpool(self.spool_dir, f"results-{batch_id}-"),
                ready_at=monotonic_now + latency_s,
            )
            self._batches[batch_id] = batch
        return batch

    def get(self, api_key: str, batch_id: str) -> Batch:
        """The caller's batch, brought up to date with the clock; 404 otherwise."""
        with self.lock:
            batch = self._batches.get(batch_id)
            if batch is None or batch.api_key != api_key:
                raise not_found(f"No Message Batch with id '{batch_id}' was found for this API key.")
            self.refresh(batch)
            return batch

    def refresh(self, batch: Batch) -> None:
        """Apply what the clock (and a pending cancel) says has happened by now."""
        with self.lock:
            if batch.discarded:
                return
            now = self.state.clock.now()
            if batch.status == "canceling":
                batch.finish("canceled", now)
            elif batch.status == "in_progress" and now >= batch.expires_at:
                batch.finish("expired", batch.expires_at)
            if batch.status == "ended" and batch.archived_at is None and now >= batch.archive_at:
                batch.archived_at = batch.archive_at
                batch.results.close()

    def cancel(self, api_key: str, batch_id: str) -> Batch:
        """Move an unfinished batch to ``canceling``; its worker ends it shortly."""
        with self.lock:
            batch = self.get(api_key, batch_id)
            if batch.status == "ended":
                raise invalid_request(f"Message Batch '{batch_id}' has already ended and cannot be canceled.")
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_initiated_at = self.state.clock.now()
            return batch

    def delete(self, api_key: str, batch_id: str) -> None:
        """Forget an ended batch and its results; 400 while it is still processing."""
        with self.lock:
            batch = self.get(api_key, batch_id)
            if batch.status != "ended":
                raise invalid_request(
                    f"Message Batch '{batch_id}' cannot be deleted while it is {batch.status}; "
                    "cancel it and wait until processing_status is 'ended'."
                )
            del self._batches[batch_id]
            batch.discard()

    def page(
        self, api_key: str, after_id: str | None, before_id: str | None, limit: int
    ) -> tuple[list[Batch], bool]:
        """One page of the caller's batches, newest first, and whether more lie beyond it."""
        with self.lock:
            mine = [batch for batch in reversed(self._batches.values()) if batch.api_key == api_key]
            for batch in mine:
                self.refresh(batch)
        ids = [batch.id for batch in mine]
        if after_id is not None:
            start = _cursor(ids, after_id, "after_id") + 1
            return mine[start : start + limit], start + limit < len(mine)
        if before_id is not None:
            end = _cursor(ids, before_id, "before_id")
            start = max(0, end - limit)
            return mine[start:end], start > 0
        return mine[:limit], limit < len(mine)

    def reset(self) -> None:
        """Forget every batch (``POST /_emulator/reset``); running workers stop."""
        with self.lock:
            for batch in self._batches.values():
                batch.discard()
            self._batches.clear()
            self._rng = random.Random(f"message-batches/{self.state.config.seed}")

    def close(self) -> None:
        self.reset()
        self.spool_dir.close()


def _cursor(ids: list[str], batch_id: str, name: str) -> int:
    try:
        return ids.index(batch_id)
    except ValueError:
        raise invalid_request(f"{name}: no Message Batch with id '{batch_id}' in this list") from None


def batch_store(state: EmulatorState) -> BatchStore:
    """The state's batch store, created (and hooked into ``state.reset()``) on first use."""
    with state.lock:
        store = state.extensions.get(_EXTENSION_KEY)
        if store is None:
            store = state.extensions[_EXTENSION_KEY] = BatchStore(state)
            state.add_reset_hook(store.reset)
    assert isinstance(store, BatchStore)
    return store
