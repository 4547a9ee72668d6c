"""Fixtures for the provider tests: an SDK client on the emulator, a fast batch service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest

from engine.providers.anthropic.batches import BatchService, open_journal


@pytest.fixture
def fast_batches(emulator: Any) -> Any:
    """The shared emulator with batches that end after 0.1 s."""
    emulator.state.config.update({"batch_latency_s": 0.1})
    return emulator


@pytest.fixture
async def client(fast_batches: Any) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(api_key="sk-test-tenant-a", base_url=fast_batches.base_url) as sdk:
        yield sdk


@pytest.fixture
async def service(tmp_path: Any) -> AsyncIterator[BatchService]:
    svc = BatchService(
        open_journal(f"sqlite:///{tmp_path}/state.db"), poll_interval=0.05, max_poll_interval=0.2
    )
    yield svc
    await svc.aclose(timeout=30)


def billing(emulator: Any) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{emulator.base_url}/_emulator/billing").json()
    return data


def paid_prompts(emulator: Any) -> dict[tuple[str, str], int]:
    """How many times each prompt text was paid for, per tier (from the emulator's request log)."""
    log = httpx.get(f"{emulator.base_url}/_emulator/requests", params={"last": 1000}).json()["data"]
    counts: dict[tuple[str, str], int] = {}
    for entry in log:
        if entry["status"] == 200 and entry["usage"] is not None:
            text = entry["body"]["messages"][0]["content"]
            counts[(text, entry["tier"])] = counts.get((text, entry["tier"]), 0) + 1
    return counts


def received_bodies(emulator: Any) -> list[dict[str, Any]]:
    """The bodies of the requests the emulator answered, oldest first."""
    log = httpx.get(f"{emulator.base_url}/_emulator/requests", params={"last": 1000}).json()["data"]
    return [entry["body"] for entry in log if entry["status"] == 200]
