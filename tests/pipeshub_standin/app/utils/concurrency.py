"""Stand-in for ``app/utils/concurrency.py``: the process-wide indexing LLM slots and a bounded gather."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Any

MAX_CONCURRENT_INDEXING_LLM_CALLS = max(1, int(os.environ.get("MAX_CONCURRENT_INDEXING_LLM_CALLS", "24")))


async def gather_with_concurrency(
    n: int, *coros: Awaitable[Any], return_exceptions: bool = False
) -> list[Any]:
    semaphore = asyncio.Semaphore(n)

    async def sem_task(coro: Awaitable[Any]) -> Any:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(sem_task(c) for c in coros), return_exceptions=return_exceptions))
