"""The batch service on the Redis journal, two workers in one process (as two replicas are):
a pooled call that another worker sent and the API rejected fails with the SDK's own
exception, the one a direct call raises, not a generic batch error."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from engine.decision import BatchPlan
from engine.journal import open_journal
from engine.providers.anthropic.batches import BatchService

PLAN = BatchPlan("accumulate", max_requests=100, max_wait="1s")


def _params(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


async def test_a_call_rejected_in_another_workers_batch_raises_the_sdk_error(
    emulator: Any, redis_url: str
) -> None:
    emulator.state.config.update({"batch_latency_s": 0.1})
    flusher = BatchService(open_journal(redis_url), poll_interval=0.05, max_poll_interval=0.2, lease_s=5)
    producer = BatchService(open_journal(redis_url), poll_interval=0.05, max_poll_interval=0.2, lease_s=5)
    client = anthropic.AsyncAnthropic(api_key="sk-pool-test", base_url=emulator.base_url)
    try:
        first = asyncio.ensure_future(flusher.answer_one(_params("call first"), PLAN, client))
        journal = flusher.journal
        deadline = asyncio.get_running_loop().time() + 20
        while not journal.redis.keys(journal.prefix + "p:*:lease"):  # type: ignore[attr-defined]
            assert asyncio.get_running_loop().time() < deadline, "the first worker never led its pool"
            await asyncio.sleep(0.02)
        with pytest.raises(anthropic.BadRequestError) as caught:
            bad = {**_params("call rejected"), "messages": [{"role": "robot", "content": "call rejected"}]}
            await producer.answer_one(bad, PLAN, client)
        assert caught.value.status_code == 400
        assert (await first).message.content[0].text.startswith("echo: call first")  # type: ignore[union-attr]
        assert flusher.batches_created >= 1 and producer.batches_created == 0  # the leader sent both
    finally:
        await producer.aclose(timeout=10)
        await flusher.aclose(timeout=10)
        await client.close()
