"""Decision records as OpenTelemetry spans and metrics, in the GenAI semantic conventions.

Names and units follow the conventions (semconv ``gen-ai``, 2025-2026 revisions):
``gen_ai.usage.input_tokens`` counts every input token, cached ones included, with
``gen_ai.usage.cache_read.input_tokens`` and ``gen_ai.usage.cache_creation.input_tokens``
saying how many of them were read from or written to the cache; ``gen_ai.client.token.usage``
is a histogram in ``{token}`` split by ``gen_ai.token.type`` (``input`` / ``output``);
``gen_ai.client.operation.duration`` a histogram in ``s``. ``gen_ai.provider.name`` is the
current name of the provider attribute; ``gen_ai.system`` (its former name) is set too,
for backends that still read it.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from engine.ledger._record import epoch_ns

__all__ = ["OtelInstruments", "span_attributes"]

_SCOPE = "llm-policy"
#: The conventions' advised bucket boundaries for ``gen_ai.client.token.usage``.
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_METRIC_KEYS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")
_PROVIDERS = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}


def _provider(record: dict[str, Any]) -> str:
    """The conventions' provider name: Claude on Bedrock is ``aws.bedrock``, on Vertex ``gcp.vertex_ai``."""
    return _PROVIDERS.get(str(record.get("transport")), str(record.get("provider") or "anthropic"))


def total_input(usage: dict[str, Any]) -> int:
    return (
        int(usage["input_tokens"])
        + int(usage["cache_read_input_tokens"])
        + int(usage["cache_creation_input_tokens"])
    )


def span_attributes(record: dict[str, Any]) -> dict[str, Any]:
    """The span's attributes: GenAI conventions first, then the engine's ``llm_policy.*``."""
    provider = _provider(record)
    out: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": record["model"],
        "llm_policy.decision.id": record["id"],
        "llm_policy.call_site": record["call_site"],
        "llm_policy.call": record["call"],
        "llm_policy.strategy": record["strategy"],
        "llm_policy.applied": bool(record["applied"]),
    }
    if record.get("max_tokens") is not None:
        out["gen_ai.request.max_tokens"] = int(record["max_tokens"])
    usage = record.get("usage")
    if usage:
        out["gen_ai.usage.input_tokens"] = total_input(usage)
        out["gen_ai.usage.output_tokens"] = int(usage["output_tokens"])
        out["gen_ai.usage.cache_read.input_tokens"] = int(usage["cache_read_input_tokens"])
        out["gen_ai.usage.cache_creation.input_tokens"] = int(usage["cache_creation_input_tokens"])
    policy = record.get("policy")
    if policy:
        out["llm_policy.policy.name"] = policy["name"]
        if policy.get("version") is not None:
            out["llm_policy.policy.version"] = int(policy["version"])
        out["llm_policy.policy.mode"] = policy["mode"]
    for key, attr in (("rule", "llm_policy.rule"), ("batch_id", "llm_policy.batch.id")):
        if record.get(key) is not None:
            out[attr] = str(record[key])
    cost = record.get("cost")
    if cost:
        out["llm_policy.cost.realized_usd"] = float(cost["realized_usd"])
        out["llm_policy.cost.counterfactual_usd"] = float(cost["counterfactual_usd"])
    miss = record.get("cache_miss")
    if miss:
        out["llm_policy.cache_miss.cause"] = str(miss["cause"])
    if record.get("error"):
        out["error.type"] = str(record["error"])
    return out


def _version() -> str:
    try:
        return importlib.metadata.version("llm-policy")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class OtelInstruments:
    """A tracer and the meters' instruments, from the given or the global providers."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        version = _version()
        self.tracer = trace.get_tracer(_SCOPE, version, tracer_provider)
        meter = metrics.get_meter(_SCOPE, version, meter_provider)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens = meter.create_counter(
            "llm_policy.tokens", unit="{token}", description="Tokens billed, by llm_policy.token.kind."
        )
        self.cost = meter.create_counter(
            "llm_policy.cost",
            unit="USD",
            description="Realized and counterfactual cost, by llm_policy.cost.kind.",
        )
        self.decisions = meter.create_counter(
            "llm_policy.decisions", unit="{call}", description="Calls decided, by llm_policy.strategy."
        )

    def observe(self, record: dict[str, Any]) -> None:
        attributes = span_attributes(record)
        end = epoch_ns(record["time"]) + int((record.get("latency_ms") or 0.0) * 1e6)
        start = epoch_ns(record["time"])
        span = self.tracer.start_span(
            f"chat {record['model']}", kind=SpanKind.CLIENT, attributes=attributes, start_time=start
        )
        if record.get("error"):
            span.set_status(Status(StatusCode.ERROR, str(record["error"])))
        span.end(end_time=end)
        self._metrics(record, attributes)

    def _metrics(self, record: dict[str, Any], span: dict[str, Any]) -> None:
        common = {
            k: span[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")
        }
        strategy = {"llm_policy.strategy": span["llm_policy.strategy"]}
        self.decisions.add(1, {**common, **strategy})
        if record.get("latency_ms") is not None:
            extra = {"error.type": span["error.type"]} if "error.type" in span else {}
            self.duration.record(record["latency_ms"] / 1000.0, {**common, **extra})
        usage = record.get("usage")
        if usage:
            self.token_usage.record(
                span["gen_ai.usage.input_tokens"], {**common, "gen_ai.token.type": "input"}
            )
            self.token_usage.record(int(usage["output_tokens"]), {**common, "gen_ai.token.type": "output"})
            for kind, key in (
                ("input", "input_tokens"),
                ("cache_read", "cache_read_input_tokens"),
                ("cache_write_5m", "cache_write_5m_tokens"),
                ("cache_write_1h", "cache_write_1h_tokens"),
                ("output", "output_tokens"),
            ):
                self.tokens.add(int(usage[key]), {**common, "llm_policy.token.kind": kind})
        cost = record.get("cost")
        if cost:
            for kind in ("realized", "counterfactual"):
                self.cost.add(float(cost[f"{kind}_usd"]), {**common, "llm_policy.cost.kind": kind})
