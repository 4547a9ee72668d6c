"""Processing a Message Batch: one asyncio task per batch, on the server's loop.

The task waits ``batch_latency_s`` of wall time (the batch stays ``in_progress``),
then answers the items through ``state.run_message(..., tier="batch")`` in the
batch's seeded random order, as concurrent waves under the seeded cache hit
model of :mod:`batches_cache` (an item reads only what earlier waves wrote, and
only when its draw says so). It works in
slices of a few milliseconds and yields to the event loop between them, so a
100,000-item batch never stalls other requests for long, and a cancel, a clock
jump past ``expires_at`` or a reset is noticed between slices.

Each item's fate is drawn from a hash of (seed, batch id, custom_id) against the
configured ``batch_error_rate`` / ``batch_expire_rate``: the same seed and inputs
give the same outcome whatever else the server is doing. Injected errors and
expiries never reach ``run_message``, so they are never billed; an item whose
params ``run_message`` refuses ends ``errored`` with that refusal (not billed
either).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

from engine.emulator.batches_cache import start_run
from engine.emulator.batches_store import Batch, BatchStore, Fate
from engine.emulator.errors import ApiError, new_request_id

__all__ = ["draw_fate", "process_slice", "run_batch"]

_log = logging.getLogger(__name__)

#: Longest stretch of processing between two yields to the event loop.
SLICE_S = 0.02
#: How often a waiting batch looks for a cancel, an expiry or a reset.
POLL_S = 0.05


async def run_batch(store: BatchStore, batch: Batch) -> None:
    """Drive ``batch`` from ``in_progress`` to ``ended`` (or drop it if discarded)."""
    while not _settled(store, batch) and time.monotonic() < batch.ready_at:
        await asyncio.sleep(min(POLL_S, max(0.0, batch.ready_at - time.monotonic())))
    while not _settled(store, batch):
        process_slice(store, batch, SLICE_S)
        await asyncio.sleep(0)


def _settled(store: BatchStore, batch: Batch) -> bool:
    store.refresh(batch)
    return batch.discarded or batch.status == "ended"


def process_slice(store: BatchStore, batch: Batch, budget_s: float) -> None:
    """Answer items until ``budget_s`` is spent or none is left; end the batch after the last."""
    deadline = time.monotonic() + budget_s
    with store.lock:
        if batch.discarded or batch.status != "in_progress":
            return
        if batch.cache_run is None:
            batch.cache_run = start_run(store.state, batch.id, batch.api_key)
        while batch.done < batch.total:
            position = batch.done
            fate, line = _answer(store, batch, batch.order[position], position)
            batch.record(position, fate, line)
            if time.monotonic() >= deadline:
                break
        if batch.done == batch.total:
            batch.end(store.state.clock.now())


def _answer(store: BatchStore, batch: Batch, index: int, position: int) -> tuple[Fate, bytes]:
    """The fate and result line of item ``index``, processed at ``position``."""
    custom_id = batch.custom_ids[index]
    config = store.state.config
    fate = draw_fate(config.seed, batch.id, custom_id, config.batch_error_rate, config.batch_expire_rate)
    result: dict[str, Any]
    if fate == "expired":
        result = {"type": "expired"}
    elif fate == "errored":
        result = _errored(ApiError(500, "api_error", "Internal server error"))
    else:
        params = json.loads(batch.items.read(index))
        try:
            assert batch.cache_run is not None
            access = batch.cache_run.access(position, custom_id)
            message = store.state.run_message(batch.api_key, params, tier="batch", access=access)
            result = {"type": "succeeded", "message": message}
        except ApiError as exc:
            fate, result = "errored", _errored(exc)
        except Exception:  # a bug in the emulator must not leave the batch stuck forever
            _log.exception("batch %s item %s failed inside the emulator", batch.id, custom_id)
            fate, result = "errored", _errored(ApiError(500, "api_error", "Internal server error"))
    line = json.dumps({"custom_id": custom_id, "result": result}, separators=(",", ":"), ensure_ascii=False)
    return fate, line.encode()


def _errored(error: ApiError) -> dict[str, Any]:
    return {"type": "errored", "error": error.body(new_request_id())}


def draw_fate(seed: int, batch_id: str, custom_id: str, error_rate: float, expire_rate: float) -> Fate:
    """``succeeded`` unless the seeded draw for this item lands in the error or expiry share."""
    digest = hashlib.blake2b(f"{seed}/{batch_id}/{custom_id}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2.0**64
    if draw < error_rate:
        return "errored"
    if draw < error_rate + expire_rate:
        return "expired"
    return "succeeded"
