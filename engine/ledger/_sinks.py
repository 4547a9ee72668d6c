"""Where decision records go: a JSON-lines file and Python logging.

Writing the log must never break a call: a sink that fails is reported once (per
sink and error type) on the ``llm_policy.ledger`` logger and the call goes on.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson

from engine.ledger._record import DecisionRecord

__all__ = ["DecisionLog", "JsonLinesSink", "LoggingSink", "Sink"]

logger = logging.getLogger("llm_policy.ledger")


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


_BUFFER_BYTES = 1 << 20


class JsonLinesSink:
    """Appends one JSON object per line; the file and its folder are created on first write.

    Lines reach the file at most ``flush_interval`` seconds after they are written (and on
    ``flush``/``close``), so a busy process pays one write per interval, not one per call.
    """

    def __init__(self, path: str | Path, *, flush_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._file: Any = None
        self._flushed = 0.0
        _open_files.add(self)

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # A large buffer: the timed flush below decides when lines reach the
                # file, so a busy process makes one write call per interval, not per call.
                self._file = self.path.open("ab", buffering=_BUFFER_BYTES)
            self._file.write(line)
            now = time.monotonic()
            if now - self._flushed >= self.flush_interval:
                self._file.flush()
                self._flushed = now

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_open_files: weakref.WeakSet[JsonLinesSink] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for sink in list(_open_files):
        sink.flush()


class LoggingSink:
    """One INFO line per record on ``llm_policy.decisions``; the record rides in ``extra``."""

    def __init__(self, name: str = "llm_policy.decisions") -> None:
        self.logger = logging.getLogger(name)

    def write(self, record: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        cost = record.get("cost") or {}
        self.logger.info(
            "%s call_site=%s rule=%s strategy=%s applied=%s realized_usd=%s counterfactual_usd=%s",
            record["id"],
            record["call_site"],
            record["rule"],
            record["strategy"],
            record["applied"],
            cost.get("realized_usd"),
            cost.get("counterfactual_usd"),
            extra={"llm_policy_decision": record},
        )

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class DecisionLog:
    """Fans each record out to its sinks; a failing sink is reported once, not per call.

    Records are written on the caller's thread: a writer thread was measured slower
    (its wake-ups and the interpreter lock cost more than the ~0.07 ms a record takes).
    """

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = list(sinks)
        self._reported: set[tuple[Any, str]] = set()

    @classmethod
    def to(cls, path: str | Path | None) -> DecisionLog:
        """Python logging always; a JSON-lines file too when ``path`` is given."""
        sinks: list[Sink] = [LoggingSink()]
        if path is not None:
            sinks.append(JsonLinesSink(path))
        return cls(sinks)

    def emit(self, record: DecisionRecord, complete: Callable[[], None] | None = None) -> None:
        """Write ``record``; ``complete`` first fills in what only a written record needs."""
        if not self.sinks:
            return
        try:
            if complete is not None:
                complete()
            data = record.to_dict()
        except Exception as exc:  # the log must never fail a call
            self._report(("complete", type(exc).__name__), "decision record could not be completed: %r", exc)
            return
        for sink in self.sinks:
            try:
                sink.write(data)
            except Exception as exc:
                self._report(
                    (id(sink), type(exc).__name__),
                    f"decision log sink {sink!r} failed, records dropped: %s",
                    exc,
                )

    def _report(self, key: tuple[Any, str], message: str, exc: Exception) -> None:
        if key not in self._reported:
            self._reported.add(key)
            logger.warning(message, exc)

    def flush(self) -> None:
        """Push buffered records to their files (reading the log right after calls)."""
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
