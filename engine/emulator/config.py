"""The emulator's settings: seed, fault rates, latencies, log size.

One mutable dataclass, so ``POST /_emulator/faults`` can change rates at run time
and every reader sees the new values on its next request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["NULLABLE", "RUNTIME_SETTABLE", "EmulatorConfig", "batch_hit_range"]


@dataclass
class EmulatorConfig:
    """Settings of one emulator instance.

    ``fault_rate`` is the share of ``/v1/messages`` requests answered with a fault
    (429 with ``retry-after``, 529, 500 or a dropped connection, drawn from the
    seeded generator). ``batch_error_rate`` / ``batch_expire_rate`` are the shares
    of batch items that end errored / expired. ``latency_s`` is added to every
    message request before its response starts; ``batch_latency_s`` is the wall
    time a batch stays ``in_progress``.

    Batch caching (ANTHROPIC.md, "Batches and caching"): items run concurrently in
    waves of ``batch_wave_size``; an entry an item writes is readable only by later
    waves (once that item has started). ``batch_cache_hit_rate`` is the probability
    that a batch item reads an entry available to it; ``None`` is the documented
    default, a per-batch rate drawn with the seed uniformly from the data file's
    ``batch_cache_hit_range`` (30%..98%).

    Batch API faults (all off by default, drawn from the seeded generator):
    ``batch_fault_rate`` is the share of batch API requests (create, list, retrieve,
    results) answered 429, 529, 500 or with a dropped connection before anything
    happens; ``batch_create_lost_rate`` the share of creates that make the batch and
    then answer 500 or drop the connection (the client cannot tell it was made);
    ``results_cut_rate`` the share of results downloads cut after
    ``results_cut_line`` lines (0: a line drawn at random).
    """

    seed: int = 0
    fault_rate: float = 0.0
    batch_error_rate: float = 0.0
    batch_expire_rate: float = 0.0
    latency_s: float = 0.0
    batch_latency_s: float = 1.0
    requests_log_size: int = 1000
    retry_after_s: int = 1
    batch_cache_hit_rate: float | None = None
    batch_wave_size: int = 100
    batch_fault_rate: float = 0.0
    batch_create_lost_rate: float = 0.0
    results_cut_rate: float = 0.0
    results_cut_line: int = 0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse values that make no sense, naming the setting."""
        rates = ("batch_fault_rate", "batch_create_lost_rate", "results_cut_rate")
        for name in ("fault_rate", "batch_error_rate", "batch_expire_rate", *rates):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in ("latency_s", "batch_latency_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        rate = self.batch_cache_hit_rate
        if rate is not None and (isinstance(rate, bool) or not 0.0 <= float(rate) <= 1.0):
            raise ValueError(f"batch_cache_hit_rate must be null or between 0 and 1, got {rate!r}")
        if int(self.results_cut_line) < 0:
            raise ValueError(f"results_cut_line must be >= 0, got {self.results_cut_line!r}")
        if isinstance(self.batch_wave_size, bool) or int(self.batch_wave_size) < 1:
            raise ValueError(f"batch_wave_size must be >= 1, got {self.batch_wave_size!r}")
        if int(self.requests_log_size) < 1:
            raise ValueError(f"requests_log_size must be >= 1, got {self.requests_log_size!r}")
        if self.batch_error_rate + self.batch_expire_rate > 1.0:
            raise ValueError("batch_error_rate + batch_expire_rate must not exceed 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (only :data:`RUNTIME_SETTABLE` keys); all or nothing."""
        unknown = sorted(set(changes) - RUNTIME_SETTABLE)
        if unknown:
            raise ValueError(
                f"unknown fault setting(s): {', '.join(unknown)}; settable: {sorted(RUNTIME_SETTABLE)}"
            )
        types = {f.name: f.type for f in fields(self)}
        trial = EmulatorConfig(**{**self.as_dict(), **changes})
        for key in changes:
            value = getattr(trial, key)
            if value is None and key in NULLABLE:
                setattr(self, key, None)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            setattr(self, key, int(value) if types[key] in ("int", int) else float(value))

    def hit_model(self) -> str:
        """The batch cache hit model in words, for reports and benchmark figures."""
        if self.batch_cache_hit_rate is None:
            low, high = batch_hit_range()
            return f"documented default: per-batch hit rate uniform in {low:.2f}..{high:.2f} (seeded)"
        return f"fixed: batch items read an available entry with probability {self.batch_cache_hit_rate:.2f}"


def batch_hit_range() -> tuple[float, float]:
    """The documented best-effort range of batch cache hits, from the data file."""
    from engine.providers.anthropic.capabilities import capabilities

    low, high = capabilities().limits["batch_cache_hit_range"]
    return float(low), float(high)


#: Settings that take ``null`` (meaning: the documented default).
NULLABLE = frozenset({"batch_cache_hit_rate"})


#: What ``POST /_emulator/faults`` may change while the server runs.
RUNTIME_SETTABLE = frozenset(
    {
        "seed",
        "fault_rate",
        "batch_error_rate",
        "batch_expire_rate",
        "latency_s",
        "batch_latency_s",
        "retry_after_s",
        "batch_cache_hit_rate",
        "batch_wave_size",
        "batch_fault_rate",
        "batch_create_lost_rate",
        "results_cut_rate",
        "results_cut_line",
    }
)
