"""Start ``llm-policy emulator`` in a process of its own, as the real API would be.

A benchmark's client and the server then do not share an interpreter lock, and the
server's memory is its own to measure.
"""

from __future__ import annotations

import subprocess
import sys


def start_emulator(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """``(process, base_url)`` of an emulator on a free port; ``flags`` as on the command line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "emulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return proc, line.removeprefix("listening on ")
