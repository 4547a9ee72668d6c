"""Emulator time: real time plus an offset that tests move forward.

Cache TTLs and batch expiry are hours long; a test cannot wait for them. Every
place in the emulator that needs "now" asks this clock, and
``POST /_emulator/clock {"advance_s": N}`` adds N seconds to it. It never goes back.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    """Epoch seconds in emulator time. Thread-safe; starts at real time."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        """Seconds this clock runs ahead of real time."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move emulator time forward by ``seconds`` (must be >= 0)."""
        if seconds < 0:
            raise ValueError(f"the emulator clock only moves forward (advance_s={seconds})")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
