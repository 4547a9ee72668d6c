"""What every request cost, priced with the shared price table.

Totals since start (or the last reset) and the same record per API key. The cost
comes from ``ModelInfo.cost`` with the data file's batch multiplier, so the
emulator, the engine's ledger and the benchmarks price a usage identically.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.providers.anthropic.capabilities import ModelInfo, Usage, capabilities

__all__ = ["Billing"]

_COUNTERS = (
    "requests_standard",
    "requests_batch",
    "input_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
)


def _empty() -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
    record["cost_usd"] = 0.0
    return record


class Billing:
    """Running totals, overall and per API key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = _empty()
        self._by_key: dict[str, dict[str, Any]] = {}

    def add(self, api_key: str, info: ModelInfo, usage: Usage, tier: str) -> float:
        """Record one billed response; return its cost in USD."""
        cost = info.cost(usage, batch_multiplier=capabilities().multipliers["batch"])
        with self._lock:
            for record in (self._totals, self._by_key.setdefault(api_key, _empty())):
                record["requests_batch" if tier == "batch" else "requests_standard"] += 1
                record["input_tokens"] += usage.input_tokens
                record["cache_write_tokens"] += usage.cache_write_tokens
                record["cache_write_5m_tokens"] += usage.cache_write_5m_tokens
                record["cache_write_1h_tokens"] += usage.cache_write_1h_tokens
                record["cache_read_tokens"] += usage.cache_read_tokens
                record["output_tokens"] += usage.output_tokens
                record["cost_usd"] += cost
        return cost

    def snapshot(self, api_key: str | None = None) -> dict[str, Any]:
        """Totals plus ``by_key``; with ``api_key``, only that key's record."""
        with self._lock:
            if api_key is not None:
                return dict(self._by_key.get(api_key) or _empty())
            out = dict(self._totals)
            out["by_key"] = {k: dict(v) for k, v in sorted(self._by_key.items())}
        return out
