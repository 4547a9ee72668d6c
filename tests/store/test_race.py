"""Eight publishers at once, as threads and as processes: nothing is lost.

Each publisher reads the active version, publishes its own document with
``expected_version`` set to it and, on :class:`ConflictError`, re-reads and retries.
Plain publishes (no expectation) must all land too. Afterwards the store holds every
document exactly once, as versions 1..N without gaps, with exactly one active.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest

from engine.store import ConflictError, PolicyStore, open_store

from .helpers import assert_invariants, policy_doc

WORKERS = 8


def _doc(worker: int, n: int) -> dict[str, Any]:
    doc = policy_doc("race")
    doc["metadata"]["description"] = f"worker {worker} publish {n}"
    return doc


def _publish_all(store: PolicyStore, worker: int, count: int, expect: bool) -> tuple[list[int], int]:
    """Publish ``count`` documents; return the versions they landed as and the conflicts met."""
    landed: list[int] = []
    conflicts = 0
    for n in range(count):
        while True:
            current = store.active_revision("race")
            expected = (current[0] if current else 0) if expect else None
            try:
                result = store.publish(_doc(worker, n), author=f"worker-{worker}", expected_version=expected)
            except ConflictError:
                conflicts += 1
                continue
            assert result.created
            landed.append(result.version)
            break
    return landed, conflicts


def _process_main(url: str, worker: int, count: int, expect: bool, start: Any, results: Any) -> None:
    store = open_store(url)
    try:
        start.wait()
        results.put((worker, *_publish_all(store, worker, count, expect)))
    finally:
        store.close()


def _check(store: PolicyStore, landed: list[int], total: int) -> None:
    assert sorted(landed) == list(range(1, total + 1)), "every publish landed as its own contiguous version"
    history = store.history("race")
    descriptions = Counter(v.document["metadata"]["description"] for v in history.versions)
    assert len(descriptions) == total and set(descriptions.values()) == {1}
    assert_invariants(store, "race")


@pytest.mark.parametrize("expect", [True, False], ids=["expected-version", "plain"])
def test_threads_racing_lose_nothing(store_url: str, expect: bool) -> None:
    count = 6
    stores = [open_store(store_url) for _ in range(WORKERS)]
    stores[0].ensure_schema()
    start = threading.Barrier(WORKERS)
    outcomes: dict[int, tuple[list[int], int]] = {}

    def run(worker: int) -> None:
        start.wait()
        outcomes[worker] = _publish_all(stores[worker], worker, count, expect)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert len(outcomes) == WORKERS
        _check(stores[0], [v for landed, _ in outcomes.values() for v in landed], WORKERS * count)
        conflicts = sum(c for _, c in outcomes.values())
        print(f"threads ({'expected' if expect else 'plain'}): conflicts retried = {conflicts}")
    finally:
        for s in stores:
            s.close()


def test_processes_racing_lose_nothing(store_url: str) -> None:
    count = 4
    setup = open_store(store_url)
    setup.ensure_schema()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(store_url, w, count, True, start, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0] * WORKERS
        _check(setup, [v for _, landed, _ in outcomes for v in landed], WORKERS * count)
        print(f"processes: conflicts retried = {sum(c for _, _, c in outcomes)}")
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        setup.close()
