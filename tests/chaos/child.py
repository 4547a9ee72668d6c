"""A worker process for the chaos suite: asks its prompts through a BatchService, prints outcomes.

``python -m tests.chaos.child BASE_URL JOURNAL_URL MODE PROMPTS_JSON`` (MODE: pooled or
explicit). Prints one JSON line: ``{prompt: "ok" | "<error>"}``. A test may kill it
with SIGKILL at any point; its lease is short so the next owner takes over quickly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import anthropic

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchService, open_journal
from tests.chaos.harness import ask, explicit_call, pooled_call

LEASE_S = 1.0
POOLED = BatchPlan("accumulate", max_requests=25, max_wait="1s", retries=3)
EXPLICIT = BatchPlan("explicit", retries=3)


async def main(base_url: str, journal_url: str, mode: str, prompts: list[str]) -> None:
    service = BatchService(
        open_journal(journal_url), poll_interval=0.05, max_poll_interval=0.3, lease_s=LEASE_S
    )
    async with anthropic.AsyncAnthropic(api_key="sk-chaos", base_url=base_url) as client:
        if mode == "pooled":
            outcomes = await asyncio.gather(
                *(pooled_call(service, client, ask(p), POOLED) for p in prompts), return_exceptions=True
            )
        else:
            outcomes = await explicit_call(service, client, [ask(p) for p in prompts], EXPLICIT)
        await service.aclose(timeout=60)
    pairs = zip(prompts, outcomes, strict=True)
    report = {p: "ok" if isinstance(o, anthropic.types.Message) else repr(o) for p, o in pairs}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    base, journal, mode, path = sys.argv[1:5]
    asyncio.run(main(base, journal, mode, json.loads(Path(path).read_text(encoding="utf-8"))))
