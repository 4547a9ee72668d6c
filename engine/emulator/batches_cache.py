"""How batch items meet the prompt cache: concurrent waves and a seeded hit model.

The API processes a batch's items concurrently, so cache hits inside a batch are
best effort (ANTHROPIC.md, "Batches and caching": 30%-98%; a cold batch can read
nothing; entries written by ordinary requests are not reliably read). The
emulator models that with two rules:

- Waves: items start ``batch_wave_size`` at a time. What an item writes becomes
  readable when the next wave starts (an entry is usable only once the item that
  wrote it started, and the items of one wave start together), so the first wave
  of a cold batch reads nothing.
- Hit model: each batch has a hit rate, ``batch_cache_hit_rate`` when set, else
  drawn with the seed uniformly from the data file's ``batch_cache_hit_range``.
  Each item draws (from a hash of seed, batch id and custom_id, so the outcome does
  not depend on processing order) whether it reads the entries available to it,
  whoever wrote them; when it does not, it reads nothing and writes as a cold
  request would.

Every batch's rate and how many items read are kept for ``GET /_emulator/billing``
so a figure measured through batches can say which hit model it ran under.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from engine.emulator.cache import ItemAccess
from engine.emulator.config import batch_hit_range
from engine.emulator.state import EmulatorState

__all__ = ["BatchCacheRun", "batch_cache_report", "start_run"]

_EXTENSION_KEY = "batch_cache_report"


def _unit(*parts: object) -> float:
    """A number in [0, 1) from a hash of ``parts``: seeded and order-independent."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass
class BatchCacheRun:
    """The cache side of one batch's processing: its hit rate, waves and held writes."""

    state: EmulatorState
    batch_id: str
    api_key: str
    hit_rate: float
    wave_size: int
    held: list[bytes] = field(default_factory=list)
    wave: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    def access(self, position: int, custom_id: str) -> ItemAccess:
        """The access of the item processed at ``position``; starts a new wave when due."""
        wave = position // self.wave_size
        if wave != self.wave:
            self.release()
            self.wave = wave
        reads = _unit(self.state.config.seed, self.batch_id, custom_id, "cache") < self.hit_rate
        self.record["items"] += 1
        self.record["items_reading"] += int(reads)
        return ItemAccess(reads=reads, held=self.held)

    def release(self) -> None:
        """Make the current wave's writes readable (next wave starts, or the batch ends)."""
        if self.held:
            self.state.release_batch_writes(self.api_key, self.held)
            self.held.clear()


def start_run(state: EmulatorState, batch_id: str, api_key: str) -> BatchCacheRun:
    """Fix a batch's hit rate and wave size from the settings in force when it starts."""
    config = state.config
    if config.batch_cache_hit_rate is None:
        low, high = batch_hit_range()
        rate, source = low + (high - low) * _unit(config.seed, batch_id, "hit-rate"), "default"
    else:
        rate, source = float(config.batch_cache_hit_rate), "fixed"
    record: dict[str, Any] = {
        "api_key": api_key,
        "hit_rate": rate,
        "source": source,
        "wave_size": int(config.batch_wave_size),
        "items": 0,
        "items_reading": 0,
    }
    with _lock:
        _report(state)[batch_id] = record
    return BatchCacheRun(state, batch_id, api_key, rate, int(config.batch_wave_size), record=record)


_lock = threading.Lock()


def _report(state: EmulatorState) -> dict[str, dict[str, Any]]:
    with state.lock:
        report = state.extensions.get(_EXTENSION_KEY)
        if report is None:
            report = state.extensions[_EXTENSION_KEY] = {}
            state.add_reset_hook(report.clear)
    assert isinstance(report, dict)
    return report


def batch_cache_report(state: EmulatorState, api_key: str | None = None) -> dict[str, Any]:
    """The hit model in force and, per batch run so far, its rate and reads."""
    with _lock:
        batches = {
            batch_id: {k: v for k, v in record.items() if k != "api_key"}
            for batch_id, record in _report(state).items()
            if api_key is None or record["api_key"] == api_key
        }
    return {
        "hit_model": state.config.hit_model(),
        "batch_cache_hit_rate": state.config.batch_cache_hit_rate,
        "batch_wave_size": state.config.batch_wave_size,
        "batches": batches,
    }
