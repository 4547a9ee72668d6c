"""Fixtures and helpers shared by the Message Batches tests (this module holds no tests).

Every test talks to the shared emulator server through the official ``anthropic``
SDK. ``batch_latency_s`` is lowered to 0.05 s so a batch ends quickly; the
``emulator`` fixture restores the settings afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.messages import MessageBatch

from engine.emulator.batches import batch_store
from engine.emulator.batches_store import BatchStore
from engine.emulator.state import EmulatorState

MODEL = "claude-sonnet-4-6"
API_KEY = "batch-test-key"
#: Upper bound on waiting for a batch to end (a hang guard, not a timing assertion).
WAIT_S = 30.0


@dataclass
class Emu:
    base_url: str
    state: EmulatorState
    client: anthropic.Anthropic
    aclient: anthropic.AsyncAnthropic

    @property
    def store(self) -> BatchStore:
        return batch_store(self.state)

    def billing(self, api_key: str = API_KEY) -> dict[str, Any]:
        reply = httpx.get(f"{self.base_url}/_emulator/billing", params={"api_key": api_key})
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()
        return data

    def advance(self, seconds: float) -> None:
        httpx.post(f"{self.base_url}/_emulator/clock", json={"advance_s": seconds}).raise_for_status()

    def set_faults(self, **settings: float) -> None:
        httpx.post(f"{self.base_url}/_emulator/faults", json=settings).raise_for_status()


@pytest.fixture
def emu(emulator: Any) -> Iterator[Emu]:
    state: EmulatorState = emulator.state
    state.config.update({"batch_latency_s": 0.05})
    client = anthropic.Anthropic(base_url=emulator.base_url, api_key=API_KEY, max_retries=0)
    aclient = anthropic.AsyncAnthropic(base_url=emulator.base_url, api_key=API_KEY, max_retries=0)
    try:
        yield Emu(emulator.base_url, state, client, aclient)
    finally:
        client.close()


def item(custom_id: str, text: str | None = None, **params: Any) -> dict[str, Any]:
    """One batch request whose reply echoes ``text`` (default: the custom_id)."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text or f"question {custom_id}"}],
    }
    body.update(params)
    return {"custom_id": custom_id, "params": body}


def items(n: int, prefix: str = "req") -> list[dict[str, Any]]:
    return [item(f"{prefix}-{i}") for i in range(n)]


def wait_ended(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    deadline = time.monotonic() + WAIT_S
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} did not end: {batch}"
        time.sleep(0.02)


async def await_ended(client: anthropic.AsyncAnthropic, batch_id: str) -> MessageBatch:
    deadline = time.monotonic() + WAIT_S
    while True:
        batch = await client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} did not end: {batch}"
        await asyncio.sleep(0.02)


def results_by_id(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    """custom_id -> result, failing on a repeated custom_id."""
    out: dict[str, Any] = {}
    for line in client.messages.batches.results(batch_id):
        assert line.custom_id not in out, f"custom_id {line.custom_id} returned twice"
        out[line.custom_id] = line.result
    return out


def counts(batch: MessageBatch) -> dict[str, int]:
    return batch.request_counts.model_dump()
