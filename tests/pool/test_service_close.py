"""Closing the batch service the moment one of its tasks has ended.

A task's end and the callback that forgets it are one loop turn apart. Closing in
between used to spin forever on Python 3.12 and later, whose ``asyncio.gather`` of
tasks that have all ended returns an already finished future without giving the loop
a turn: the service waited for its tasks in a loop that never let that callback run
(the multi-process pool producers on Python 3.12 were seen never to exit). The
timeout mark turns such a spin into a failure instead of a hung suite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.journal import open_journal
from engine.providers.anthropic.batches import BatchService


@pytest.mark.timeout(30)
async def test_close_right_after_a_task_ended_returns(tmp_path: Path) -> None:
    service = BatchService(open_journal(f"sqlite:///{tmp_path / 'journal.db'}"))
    worker = service._worker()  # this loop's worker: the one place tasks are held
    ran: list[bool] = []

    async def brief() -> None:
        ran.append(True)

    task = worker._spawn(brief())
    await asyncio.sleep(0)  # the task runs and ends; the callback forgetting it is queued behind us
    assert ran and task.done() and task in worker._tasks, "not the state this test is about"
    await service.aclose(timeout=10)
    assert not worker._tasks
