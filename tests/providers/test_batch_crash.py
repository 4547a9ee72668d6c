"""kill -9 after the batch is submitted: a restarted worker gets every result, paid once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import (
    BatchService,
    JournalEntry,
    Lease,
    SqliteJournal,
    client_identity,
    custom_id_for,
    open_journal,
    request_hash,
)

from .batch_child import LEASE_S, prompts
from .conftest import billing

COUNT = 40


def wait_for_submission(db: Path, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert child.poll() is None, "the worker exited before it was killed"
        if db.exists():
            journal = SqliteJournal(db)
            counts = journal.counts()
            journal.close()
            if counts.get("submitted") == COUNT:
                return
        time.sleep(0.05)
    raise AssertionError("the worker never submitted its batch")


def wait_for_lease_to_run_out(db: Path) -> None:
    journal = SqliteJournal(db)
    try:
        for _ in range(int(LEASE_S * 100)):
            rows = journal._db.execute("SELECT MAX(lease_expires) FROM batch_items").fetchone()
            left = float(rows[0] or 0) - time.time()
            if left < 0:
                return
            time.sleep(left + 0.05)
    finally:
        journal.close()
    raise AssertionError("the lease never ran out")


@pytest.mark.parametrize("explicit_resume", [True, False], ids=["resume", "first-use"])
async def test_kill_9_after_submission_then_resume(
    emulator: Any, tmp_path: Path, explicit_resume: bool
) -> None:
    emulator.state.config.update({"batch_latency_s": 1.5})
    url = f"sqlite:///{tmp_path}/state.db"
    script = Path(__file__).with_name("batch_child.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, str(script), emulator.base_url, url, str(COUNT)], env=env)
    try:
        wait_for_submission(tmp_path / "state.db", child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    wait_for_lease_to_run_out(tmp_path / "state.db")  # only then are the dead worker's items taken

    async with anthropic.AsyncAnthropic(api_key="sk-test-crash", base_url=emulator.base_url) as client:
        me = client_identity(client)
        service = BatchService(open_journal(url), poll_interval=0.05)
        if explicit_resume:
            assert await service.resume(lambda fp, base: client if (fp, base) == me else None) == 1
        answers = await service.submit_many(prompts(COUNT), BatchPlan("explicit"), client)
        await service.aclose()
    for i, message in enumerate(answers):
        assert isinstance(message, anthropic.types.Message)
        assert message.content[0].text.startswith(f"echo: crash {i} ")  # type: ignore[union-attr]
    bill = billing(emulator)
    assert (bill["requests_batch"], bill["requests_standard"]) == (COUNT, 0), "each request paid once"


async def test_a_crash_between_create_and_journal_does_not_pay_twice(emulator: Any, tmp_path: Path) -> None:
    """The API accepted the batch, the journal still says pending: resume adopts, does not resend."""
    emulator.state.config.update({"batch_latency_s": 0.2})
    url = f"sqlite:///{tmp_path}/state.db"
    params = prompts(5)
    async with anthropic.AsyncAnthropic(api_key="sk-test-crash", base_url=emulator.base_url) as client:
        fp, base = client_identity(client)
        hashes = [request_hash(p, fp, base) for p in params]
        journal = open_journal(url)
        dead = Lease("crashed", ttl_s=-1)  # a worker that died right after create returned
        journal.claim(
            [
                JournalEntry(h, custom_id_for(h), fp, base, "pending", params=p)
                for h, p in zip(hashes, params, strict=True)
            ],
            dead,
        )
        journal.mark_sending(hashes, dead)
        journal.close()
        requests = [{"custom_id": custom_id_for(h), "params": p} for h, p in zip(hashes, params, strict=True)]
        await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]

        service = BatchService(open_journal(url), poll_interval=0.05)
        assert await service.resume(lambda _fp, _base: client) == 0, "no batch was journaled as submitted"
        answers = await service.submit_many(params, BatchPlan("explicit"), client)
        await service.aclose()
    assert [m.content[0].text.split()[2] for m in answers] == [str(i) for i in range(5)]  # type: ignore[union-attr]
    assert billing(emulator)["requests_batch"] == 5, "adopted from the accepted batch, not sent again"
