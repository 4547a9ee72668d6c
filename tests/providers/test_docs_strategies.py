"""The allocator example in docs/strategies.md runs and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def test_allocator_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)[0]
    exec(compile(block, str(DOC), "exec"), {})
    promised = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# system.")]
    assert capsys.readouterr().out.splitlines() == promised
