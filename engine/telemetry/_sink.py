"""The decision log's telemetry sink, and the handle a host keeps to configure it."""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from engine.telemetry._otel import OtelInstruments
from engine.telemetry._prometheus import PrometheusMetrics

__all__ = ["METRICS_ADDR_ENV", "METRICS_PORT_ENV", "Telemetry", "TelemetrySink", "from_env"]

METRICS_PORT_ENV = "LLM_POLICY_METRICS_PORT"
#: The address the endpoint listens on (default 127.0.0.1; 0.0.0.0 in a container).
METRICS_ADDR_ENV = "LLM_POLICY_METRICS_ADDR"

_per_registry: dict[int, PrometheusMetrics] = {}
_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry) -> PrometheusMetrics:
    """One set of series per registry: a second engine in the process adds to the same
    counters instead of failing on a duplicate name."""
    with _lock:
        found = _per_registry.get(id(registry))
        if found is None or found.registry is not registry:
            found = _per_registry[id(registry)] = PrometheusMetrics(registry)
        return found


class Telemetry:
    """Where a process's engine reports: OpenTelemetry providers and a Prometheus registry.

    Every argument is optional: the global tracer and meter providers (no-ops until the
    host installs an SDK and an exporter) and the default Prometheus registry.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.prometheus = _metrics_for(self.registry)
        self.otel = OtelInstruments(tracer_provider, meter_provider)

    def sink(self) -> TelemetrySink:
        return TelemetrySink(self)

    def watch_pool(self, service: Any) -> None:
        """Report a batch service's pools (depth, oldest request) and its batches in flight
        (requests, the oldest one's age)."""
        self.prometheus.watch_pool(service.pool_depth, service.pool_oldest_age, service.sent)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose the registry at ``http://addr:port/metrics`` (a daemon thread)."""
        start_http_server(port, addr=addr, registry=self.registry)


_served: dict[tuple[str, int], Telemetry] = {}
_serving = threading.Lock()


def from_env() -> Telemetry | None:
    """The process's telemetry when ``$LLM_POLICY_METRICS_PORT`` is set, its endpoint
    started on first use (one per address and port, shared by every engine)."""
    raw = os.environ.get(METRICS_PORT_ENV)
    if not raw:
        return None
    where = (os.environ.get(METRICS_ADDR_ENV) or "127.0.0.1", int(raw))
    with _serving:
        if where not in _served:
            telemetry = Telemetry()
            telemetry.serve(where[1], addr=where[0])
            _served[where] = telemetry
        return _served[where]


class TelemetrySink:
    """A decision-log sink: each record becomes a span, OTel metrics and Prometheus samples.

    Runs where the log's other sinks run; a failure here is reported once by the log
    and never reaches the call.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def write(self, record: dict[str, Any]) -> None:
        self.telemetry.prometheus.observe(record)
        self.telemetry.otel.observe(record)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
