"""Helpers of the multi-process pool tests: child producers, the emulator's bill, the janitor."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic

from engine.decision import BatchPlan
from engine.journal import open_journal
from engine.providers.anthropic.batches import BatchService

CHILD = Path(__file__).with_name("pool_child.py")
ROOT = Path(__file__).resolve().parents[2]
_CALL = re.compile(r"^call (\S+)")


def spawn(settings: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(settings)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def answers(proc: subprocess.Popen[str], timeout: float = 240) -> list[dict[str, Any]]:
    """The answer lines a child printed (it may have been killed: then no ``done`` line)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if proc.returncode not in (0, -9):
        raise AssertionError(f"child exited with {proc.returncode}: {err[-3000:]}")
    return lines


def billed(state: Any) -> Counter[str]:
    """Call ids the emulator answered and billed (both tiers), counted."""
    seen: Counter[str] = Counter()
    for entry in state.recent_requests(10**9):
        if entry["status"] != 200 or entry["usage"] is None:
            continue
        messages = entry["body"].get("messages") or []
        content = messages[-1]["content"] if messages else ""
        text = content if isinstance(content, str) else content[0].get("text", "")
        match = _CALL.match(text)
        if match:
            seen[match.group(1)] += 1
    return seen


async def finish_leftovers(
    journal_url: str, base_url: str, *, lease_s: float, timeout: float = 90
) -> dict[str, int]:
    """What a restarted replica does: take over what dead owners left, flush the pool, finish it all.

    Returns the journal's rows per state afterwards.
    """
    journal = open_journal(journal_url)
    service = BatchService(journal, poll_interval=0.1, max_poll_interval=1.0, lease_s=lease_s)
    client = anthropic.AsyncAnthropic(api_key="sk-pool-test", base_url=base_url)
    plan = BatchPlan("accumulate", max_requests=1000, max_wait="1s")
    params = {
        "model": "claude-sonnet-4-6", "max_tokens": 32,
        "messages": [{"role": "user", "content": "call janitor"}],
    }  # fmt: skip
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        await service.answer_one(params, plan, client)  # joins the pool: its flusher adopts leftovers
        while True:
            await service.resume(lambda fp, url: client)
            counts = await asyncio.to_thread(journal.counts)  # type: ignore[attr-defined]
            if not counts.get("pending") and not counts.get("submitted"):
                return counts
            assert asyncio.get_running_loop().time() < deadline, f"rows still open: {counts}"
            await asyncio.sleep(0.5)
    finally:
        await service.aclose(timeout=10)
        await client.close()
