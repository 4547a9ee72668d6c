"""A worker process for the crash test: submits an explicit batch, then waits forever.

Run as ``python batch_child.py BASE_URL JOURNAL_URL COUNT``; the test kills it with
SIGKILL once the journal shows the batch submitted.
"""

from __future__ import annotations

import asyncio
import sys

import anthropic

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchService, open_journal

LEASE_S = 1.0  # short, so the test does not wait long for a killed worker's lease to run out


def prompts(count: int) -> list[dict[str, object]]:
    return [
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": f"crash {i}"}],
        }
        for i in range(count)
    ]


async def main(base_url: str, journal_url: str, count: int) -> None:
    service = BatchService(open_journal(journal_url), poll_interval=0.05, lease_s=LEASE_S)
    client = anthropic.AsyncAnthropic(api_key="sk-test-crash", base_url=base_url)
    await service.submit_many(prompts(count), BatchPlan("explicit"), client)
    print("collected before the kill", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
