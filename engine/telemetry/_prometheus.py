"""The ``llm_policy_*`` Prometheus metrics, on a registry of the caller's choosing.

Labels stay low-cardinality: a strategy (4 values), a token or cost kind (a handful),
the model (a few per deployment), a cache-miss cause (a fixed list). Call sites, rules
and ids go to traces, never to labels.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["PrometheusMetrics"]

#: Seconds: a direct call takes one to tens of seconds, a batched call minutes to hours.
_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600)


class PrometheusMetrics:
    """Every ``llm_policy_*`` series, created once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.tokens = Counter(
            "llm_policy_tokens",
            "Tokens billed, by kind: input (plain), cache_read, cache_write_5m, cache_write_1h, output.",
            ["kind", "model"],
            registry=registry,
        )
        self.cost = Counter(
            "llm_policy_cost_usd",
            "USD: realized (what was billed) and counterfactual (the same calls with no policy).",
            ["kind", "model"],
            registry=registry,
        )
        self.decisions = Counter(
            "llm_policy_decisions",
            "Calls decided, by strategy and whether the request sent differs from the unwrapped one.",
            ["strategy", "applied"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "llm_policy_cache_misses",
            "Calls that paid a cache write or missed a read they expected, by cause (llm-policy doctor).",
            ["reason"],
            registry=registry,
        )
        self.cache_miss_cost = Counter(
            "llm_policy_cache_miss_cost_usd",
            "USD the misses cost over reading the same tokens from the cache, by cause.",
            ["reason"],
            registry=registry,
        )
        self.errors = Counter(
            "llm_policy_call_errors",
            "Calls that ended in an error, by strategy.",
            ["strategy"],
            registry=registry,
        )
        self.duration = Histogram(
            "llm_policy_call_duration_seconds",
            "Wall time of a call as its caller saw it, by strategy.",
            ["strategy"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self.batch_wait = Histogram(
            "llm_policy_batch_wait_seconds",
            "How long a call that went through a Message Batch waited for its answer (pool plus batch).",
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self.pool_depth = Gauge(
            "llm_policy_pool_depth",
            "Requests waiting in a pool for their batch to be sent.",
            registry=registry,
        )
        self.in_batches = Gauge(
            "llm_policy_batch_requests_in_flight",
            "Requests sent in a Message Batch and not answered yet.",
            registry=registry,
        )
        self.batch_age = Gauge(
            "llm_policy_batch_oldest_age_seconds",
            "Age of the oldest request sent in a batch and not answered yet (0 when none).",
            registry=registry,
        )
        self.pool_age = Gauge(
            "llm_policy_pool_oldest_age_seconds",
            "Age of the oldest request waiting in a pool (0 when none waits).",
            registry=registry,
        )

    def watch_pool(
        self, depth: Callable[[], int], oldest_age: Callable[[], float], sent: Callable[[], list[float]]
    ) -> None:
        """Read the pools and the batches at scrape time (a scrape thread: a read that races
        the loop is skipped, the last value stands)."""
        self.pool_depth.set_function(_quiet(depth))
        self.pool_age.set_function(_quiet(oldest_age))
        self.in_batches.set_function(_quiet(lambda: len(sent())))
        self.batch_age.set_function(_quiet(lambda: max((time.time() - t for t in sent()), default=0.0)))

    def observe(self, record: dict[str, Any]) -> None:
        strategy = str(record["strategy"])
        model = str(record["model"])
        self.decisions.labels(strategy, str(bool(record["applied"])).lower()).inc()
        usage = record.get("usage") or {}
        for kind, key in _TOKEN_KINDS:
            count = int(usage.get(key) or 0)
            if count:
                self.tokens.labels(kind, model).inc(count)
        cost = record.get("cost") or {}
        for kind in ("realized", "counterfactual"):
            if cost.get(f"{kind}_usd") is not None:
                self.cost.labels(kind, model).inc(float(cost[f"{kind}_usd"]))
        miss = record.get("cache_miss")
        if miss:
            self.cache_misses.labels(str(miss["cause"])).inc()
            self.cache_miss_cost.labels(str(miss["cause"])).inc(float(miss.get("cost_usd") or 0.0))
        if record.get("error"):
            self.errors.labels(strategy).inc()
        seconds = record.get("latency_ms")
        if seconds is not None:
            self.duration.labels(strategy).observe(seconds / 1000.0)
            if record.get("batch_id"):
                self.batch_wait.observe(seconds / 1000.0)


_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("cache_read", "cache_read_input_tokens"),
    ("cache_write_5m", "cache_write_5m_tokens"),
    ("cache_write_1h", "cache_write_1h_tokens"),
    ("output", "output_tokens"),
)


def _quiet(read: Callable[[], float]) -> Callable[[], float]:
    last = [0.0]

    def value() -> float:
        # a scrape must never fail on a pool the loop is changing: the last value stands
        with contextlib.suppress(Exception):
            last[0] = float(read())
        return last[0]

    return value
