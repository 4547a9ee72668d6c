"""The chaos suite: a reduced count of tries by default, the full count with ``pytest -m chaos``.

Each scenario is parametrized over tries (seeds): the reduced set unmarked, the full set
marked ``chaos`` (deselected by default through ``addopts``). Every try adds its figures
(calls, answered, billed twice, hung) to a table printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.emulator.server import run_emulator
from tests.chaos.harness import FIGURES


def tries(reduced: int, full: int) -> list[Any]:
    """Seeds 0..reduced-1 for the default run; 0..full-1 (marked ``chaos``) for ``-m chaos``."""
    quick = [pytest.param(seed, id=f"try{seed}") for seed in range(reduced)]
    return quick + [pytest.param(seed, id=f"full{seed}", marks=pytest.mark.chaos) for seed in range(full)]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    write = terminalreporter.write_line
    write("")
    write("chaos scenarios: tries, calls, answered, billed twice, hung")
    for scenario, rows in sorted(FIGURES.items()):
        calls = sum(r.calls for r in rows)
        answered = sum(r.answered for r in rows)
        twice = sum(r.billed_twice for r in rows)
        hung = sum(r.hung for r in rows)
        write(f"  {scenario:<40} {len(rows):>3} x  {calls:>6} {answered:>6} {twice:>4} {hung:>4}")


@pytest.fixture(scope="session")
def chaos_server() -> Iterator[Any]:
    """An emulator of the suite's own, with a request log long enough to count every bill."""
    with run_emulator(requests_log_size=200_000, batch_latency_s=0.2) as emu:
        yield emu


@pytest.fixture
def chaos_emulator(chaos_server: Any) -> Iterator[Any]:
    """The suite's emulator, reset and back to calm settings for each try."""
    state = chaos_server.state
    state.reset()
    calm = {
        "fault_rate": 0.0,
        "batch_fault_rate": 0.0,
        "batch_create_lost_rate": 0.0,
        "results_cut_rate": 0.0,
        "results_cut_line": 0,
        "batch_error_rate": 0.0,
        "batch_expire_rate": 0.0,
        "batch_latency_s": 0.2,
        "retry_after_s": 0,
    }
    state.config.update(calm)
    yield chaos_server
    state.config.update(calm)
