"""Chaos scenarios for the batch path. Each states its invariant; each checks it on the
emulator's billing (``harness.check``): every call answered within its deadline (a value,
or the exception a direct call gives), every request billed at most once.

Reduced count by default; ``pytest -m chaos tests/chaos`` runs every try.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchService, SqliteJournal, open_journal
from tests.chaos.conftest import tries
from tests.chaos.harness import ask, bounded, check, explicit_call, pooled_call

REPO = Path(__file__).resolve().parents[2]
POOLED = BatchPlan("accumulate", max_requests=25, max_wait="1s", retries=3, on_failure="direct")
EXPLICIT = BatchPlan("explicit", retries=3, on_failure="direct")
DEADLINE_S = 90.0


def service_at(url: str, **options: Any) -> BatchService:
    return BatchService(open_journal(url), poll_interval=0.05, max_poll_interval=0.3, **options)


async def run_calls(
    emulator: Any, url: str, pooled: list[str], explicit: list[str], **options: Any
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Pooled calls and one explicit batch, at once, on a fresh service; the outcomes in order."""
    service = service_at(url, **options)
    async with anthropic.AsyncAnthropic(api_key="sk-chaos", base_url=emulator.base_url) as client:
        singles = [bounded(pooled_call(service, client, ask(p), POOLED), DEADLINE_S) for p in pooled]
        batch = bounded(explicit_call(service, client, [ask(p) for p in explicit], EXPLICIT), DEADLINE_S)
        *single_out, batch_out = await asyncio.gather(*singles, batch)
        await service.aclose(timeout=30)
    if isinstance(batch_out, BaseException):
        batch_out = [batch_out] * len(explicit)
    return [ask(p) for p in [*pooled, *explicit]], [*single_out, *batch_out]


def prompts(tag: str, seed: int, n: int) -> list[str]:
    return [f"{tag}-{seed}-{i}" for i in range(n)]


@pytest.mark.parametrize("seed", tries(1, 10))
async def test_storms_of_429_529_500_and_dropped_connections(
    chaos_emulator: Any, tmp_path: Path, seed: int
) -> None:
    """Invariant: under a storm on every batch endpoint (before anything happens), all answered, once."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"batch_fault_rate": 0.3})
    asked, out = await run_calls(
        chaos_emulator,
        f"sqlite:///{tmp_path}/s.db",
        prompts("storm-p", seed, 50),
        prompts("storm-e", seed, 30),
    )
    check("storms 429/529/500/drop", chaos_emulator, asked, out)


@pytest.mark.parametrize("seed", tries(1, 10))
async def test_creates_that_succeed_but_answer_500_or_drop(
    chaos_emulator: Any, tmp_path: Path, seed: int
) -> None:
    """Invariant: a batch made by a create whose answer was lost is found and adopted, never paid twice."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"batch_create_lost_rate": 0.5, "batch_fault_rate": 0.1})
    asked, out = await run_calls(
        chaos_emulator, f"sqlite:///{tmp_path}/c.db", prompts("lost-p", seed, 50), prompts("lost-e", seed, 30)
    )
    check("create lost after success", chaos_emulator, asked, out)


@pytest.mark.parametrize("seed", tries(1, 10))
async def test_results_streams_cut_at_random_lines(chaos_emulator: Any, tmp_path: Path, seed: int) -> None:
    """Invariant: results read before a cut are kept; the rest are read again; nobody waits forever."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"results_cut_rate": 0.6})
    asked, out = await run_calls(
        chaos_emulator, f"sqlite:///{tmp_path}/r.db", prompts("cut-p", seed, 50), prompts("cut-e", seed, 120)
    )
    check("results stream cut", chaos_emulator, asked, out)


@pytest.mark.parametrize("seed", tries(1, 10))
async def test_errored_expired_canceled_items_of_every_kind(
    chaos_emulator: Any, tmp_path: Path, seed: int
) -> None:
    """Invariant: transient item failures are retried then sent direct (each paid once); requests the
    API rejects raise at once the exception a direct call raises; canceled batches resolve."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"batch_error_rate": 0.2, "batch_expire_rate": 0.2})
    service = service_at(f"sqlite:///{tmp_path}/i.db")
    good = prompts("item", seed, 40)
    bad = f"bad-request-{seed}"
    rejected = {bad: ({"messages": [], "metadata": {"user_id": bad}}, anthropic.BadRequestError)}
    rejected[f"no-model-{seed}"] = ({"model": "claude-nope"}, anthropic.NotFoundError)
    asked = [ask(p) for p in good] + [{**ask(p), **extra} for p, (extra, _) in rejected.items()]
    async with anthropic.AsyncAnthropic(api_key="sk-chaos", base_url=chaos_emulator.base_url) as client:
        out = await asyncio.gather(
            *(bounded(pooled_call(service, client, a, POOLED), DEADLINE_S) for a in asked)
        )
        # a batch that outlives its deadline is canceled: its items resolve (retried, then direct)
        chaos_emulator.state.config.update(
            {"batch_error_rate": 0.0, "batch_expire_rate": 0.0, "batch_latency_s": 5.0}
        )
        slow = prompts("canceled", seed, 5)
        plan = BatchPlan("explicit", deadline="1s", retries=0, on_failure="direct")
        canceled = await bounded(explicit_call(service, client, [ask(p) for p in slow], plan), DEADLINE_S)
        await service.aclose(timeout=30)
    expected = {p: kind for p, (_, kind) in rejected.items()}
    check("errored/expired/canceled items", chaos_emulator, [*asked, *map(ask, slow)], [*out, *canceled],
          expected_errors=expected)  # fmt: skip


def _damage(path: Path, how: str) -> sqlite3.Connection | None:
    """Damage the journal file under a running service; a connection to close for ``locked``."""
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return None
    if how == "corrupt":
        with open(path, "r+b") as handle:
            handle.seek(0)
            handle.write(b"\0" * 4096)
        return None
    holder = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    holder.execute("BEGIN EXCLUSIVE")  # locked: every write waits, then fails
    return holder


@pytest.mark.parametrize("how", ["corrupt", "locked", "full", "deleted"])
@pytest.mark.parametrize("seed", tries(1, 5))
async def test_journal_damaged_mid_run(chaos_emulator: Any, tmp_path: Path, how: str, seed: int) -> None:
    """Invariant: a journal that becomes corrupt, locked, full or deleted mid-run costs no caller its
    answer and no request a second payment: work in flight goes on from memory, new work goes direct."""
    path = tmp_path / "j.db"
    service = service_at(f"sqlite:///{path}")
    journal = service.journal
    assert isinstance(journal, SqliteJournal)
    journal._db.execute("PRAGMA busy_timeout=100")
    first, second = prompts(f"dmg-{how}-a", seed, 30), prompts(f"dmg-{how}-b", seed, 30)
    holder: sqlite3.Connection | None = None
    async with anthropic.AsyncAnthropic(api_key="sk-chaos", base_url=chaos_emulator.base_url) as client:
        calls = [
            asyncio.ensure_future(bounded(pooled_call(service, client, ask(p), POOLED), DEADLINE_S))
            for p in first
        ]
        while service.batches_created == 0:
            await asyncio.sleep(0.01)
        if how == "full":
            pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
            journal._db.execute(f"PRAGMA max_page_count={pages}")
            _fill(journal._db)
        else:
            holder = _damage(path, how)
        try:
            later = [bounded(pooled_call(service, client, ask(p), POOLED), DEADLINE_S) for p in second]
            out = await asyncio.gather(*calls, *later)
        finally:
            if holder is not None:
                holder.execute("ROLLBACK")
                holder.close()
        await service.aclose(timeout=30)
    check(f"journal {how} mid-run", chaos_emulator, [ask(p) for p in [*first, *second]], out)


def _fill(db: sqlite3.Connection) -> None:
    try:
        for n in range(1_000_000):
            db.execute(
                "INSERT INTO batch_items (request_hash, custom_id, credential, base_url, state, "
                "created_at, updated_at) VALUES (?, 'c', 'f', 'u', 'direct', 0, 0)",
                (f"filler-{n}",),
            )
    except sqlite3.OperationalError as exc:
        assert "full" in str(exc)


def _child(
    emulator: Any, url: str, mode: str, asked: list[str], folder: Path, name: str
) -> subprocess.Popen[str]:
    listing = folder / f"{name}.json"
    listing.write_text(json.dumps(asked), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.chaos.child", emulator.base_url, url, mode, str(listing)]
    return subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.PIPE, text=True)


def _wait_for(path: Path, child: subprocess.Popen[str], ready: Any, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and child.poll() is None:
        if path.exists():
            try:
                journal = SqliteJournal(path, busy_timeout_s=0.2)
                counts = journal.counts()
                journal.close()
            except Exception:
                counts = {}
            if ready(counts):
                return
        time.sleep(0.02)


@pytest.mark.parametrize("point", ["random", "submitted", "reading"])
@pytest.mark.parametrize("seed", tries(1, 7))
async def test_kill_9_at_random_points(chaos_emulator: Any, tmp_path: Path, point: str, seed: int) -> None:
    """Invariant: a worker killed at any point (before or after create, while polling, while reading
    results) loses nothing: the next worker, asked the same requests again, answers every one, and
    nothing is paid twice."""
    rng = random.Random(seed)
    chaos_emulator.state.config.update({"batch_latency_s": 0.8})
    asked = prompts(f"kill-{point}", seed, 60)
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    child = _child(chaos_emulator, url, rng.choice(["pooled", "explicit"]), asked, tmp_path, "victim")
    try:
        if point == "random":
            time.sleep(rng.uniform(0.2, 2.5))
        elif point == "submitted":
            _wait_for(path, child, lambda c: c.get("submitted", 0) > 0)
        else:
            _wait_for(path, child, lambda c: c.get("succeeded", 0) > 0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    time.sleep(1.2)  # the victim's lease (1 s) runs out
    again, out = await run_calls(chaos_emulator, url, asked, [])
    check("kill -9 then redelivery", chaos_emulator, again, out)


@pytest.mark.parametrize("seed", tries(1, 10))
async def test_two_processes_on_one_journal(chaos_emulator: Any, tmp_path: Path, seed: int) -> None:
    """Invariant: two processes sharing one journal and asking overlapping requests answer all of
    theirs, and each request is paid once (a live owner's items are joined, not resent)."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"batch_fault_rate": 0.1})
    shared = prompts("both", seed, 30)
    url = f"sqlite:///{tmp_path}/state.db"
    children = [
        _child(
            chaos_emulator, url, "pooled", [*shared, *prompts(f"own{n}", seed, 10)], tmp_path, f"worker{n}"
        )
        for n in range(2)
    ]
    reports: list[dict[str, str]] = []
    for child in children:
        stdout, _ = child.communicate(timeout=DEADLINE_S)
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    asked = [ask(p) for report in reports for p in report]
    outcomes = [_as_outcome(prompt, result) for report in reports for prompt, result in report.items()]
    check("two processes, one journal", chaos_emulator, asked, outcomes)


def _as_outcome(prompt: str, result: str) -> Any:
    """A child's report line as the harness reads outcomes (a message stand-in when "ok")."""
    if result != "ok":
        return RuntimeError(result)
    return anthropic.types.Message.model_validate(
        {"id": "m", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
         "content": [{"type": "text", "text": f"echo: {prompt} (child)"}],
         "usage": {"input_tokens": 0, "output_tokens": 0}}
    )  # fmt: skip


@pytest.mark.parametrize("seed", tries(1, 10))
def test_two_event_loops_on_one_service(chaos_emulator: Any, tmp_path: Path, seed: int) -> None:
    """Invariant: worker threads with loops of their own share one service and ask overlapping
    requests: every loop's callers are answered, each request paid once."""
    service = service_at(f"sqlite:///{tmp_path}/state.db")
    shared = prompts("loops", seed, 30)
    results: dict[int, list[Any]] = {}

    async def worker(n: int) -> None:
        own = [*shared, *prompts(f"loop{n}", seed, 10)]
        async with anthropic.AsyncAnthropic(api_key="sk-chaos", base_url=chaos_emulator.base_url) as client:
            results[n] = [ask(p) for p in own]
            results[n + 10] = await asyncio.gather(
                *(bounded(pooled_call(service, client, ask(p), POOLED), DEADLINE_S) for p in own)
            )

    threads = [threading.Thread(target=asyncio.run, args=(worker(n),)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S + 10)
    asyncio.run(service.aclose(timeout=10))
    asked = [*results.get(0, []), *results.get(1, [])]
    out = [*results.get(10, []), *results.get(11, [])]
    assert len(out) == 80, "a loop's callers were stranded"
    check("two loops, one service", chaos_emulator, asked, out)


@pytest.mark.parametrize("seed", tries(1, 5))
async def test_1200_concurrent_pooled_calls_under_faults(
    chaos_emulator: Any, tmp_path: Path, seed: int
) -> None:
    """Invariant: 1,200 concurrent pooled calls through storms and lost creates: all answered, once."""
    chaos_emulator.state.reseed(seed)
    chaos_emulator.state.config.update({"batch_fault_rate": 0.1, "batch_create_lost_rate": 0.1})
    asked, out = await run_calls(chaos_emulator, f"sqlite:///{tmp_path}/k.db", prompts("k", seed, 1200), [])
    check("1,200 concurrent pooled calls", chaos_emulator, asked, out)
