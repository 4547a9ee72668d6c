"""Telemetry after a run on the emulator: Prometheus samples, OpenTelemetry spans and
metrics carry the GenAI conventions' names and units, and their values add up to the
emulator's own bill (GET /_emulator/billing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from engine.adapter import PolicyEngine, wrap_factory
from engine.telemetry import Telemetry
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

DOC = "The indexing pipeline extracts tables, summaries and entities from each document. " * 60
MODEL = "claude-sonnet-4-6"


@pytest.fixture
def telemetry() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    return (
        Telemetry(registry=CollectorRegistry(), tracer_provider=tracer, meter_provider=meters),
        spans,
        reader,
    )


def _run(engine: PolicyEngine) -> int:
    """Three cached chat calls (one streamed) and four pooled into one batch; returns the count."""
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models=MODEL))
    chat = [("system", DOC), ("user", "What does the pipeline extract?")]
    llm.invoke(chat, config={"metadata": {"call_site": "chat.agent.complete"}})
    llm.invoke(chat, config={"metadata": {"call_site": "chat.agent.complete"}})
    list(llm.stream(chat, config={"metadata": {"call_site": "chat.agent.stream"}}))

    async def pooled() -> None:
        await asyncio.gather(
            *(
                llm.ainvoke([("system", DOC), ("user", f"Summarise part {i}.")],
                            config={"metadata": {"call_site": "indexing.summary"}})
                for i in range(4)
            )
        )  # fmt: skip

    asyncio.run(pooled())
    return 7


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _otel_points(reader: InMemoryMetricReader) -> dict[str, tuple[str, list[Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, tuple[str, list[Any]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = (metric.unit or "", list(metric.data.data_points))
    return out


def test_prometheus_and_otel_agree_with_the_emulators_bill(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    telemetry: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    hub, spans, reader = telemetry
    engine = make_engine().attach_telemetry(hub)
    calls = _run(engine)
    bill = httpx.get(f"{anthropic_env.base_url}/_emulator/billing").json()
    assert bill["requests_batch"] == 4 and bill["cache_read_tokens"] > 0

    registry = hub.registry
    for kind, key in (
        ("input", "input_tokens"),
        ("cache_read", "cache_read_tokens"),
        ("cache_write_5m", "cache_write_5m_tokens"),
        ("cache_write_1h", "cache_write_1h_tokens"),
        ("output", "output_tokens"),
    ):
        assert _sample(registry, "llm_policy_tokens_total", kind=kind) == bill[key], kind
    assert _sample(registry, "llm_policy_cost_usd_total", kind="realized") == pytest.approx(
        bill["cost_usd"], abs=1e-6
    )
    assert _sample(registry, "llm_policy_cost_usd_total", kind="counterfactual") > bill["cost_usd"]
    assert _sample(registry, "llm_policy_decisions_total") == calls
    assert _sample(registry, "llm_policy_decisions_total", strategy="batch+cache") == 4
    assert _sample(registry, "llm_policy_batch_wait_seconds_count") == 4
    assert _sample(registry, "llm_policy_call_duration_seconds_count") == calls
    assert _sample(registry, "llm_policy_pool_depth") == 0

    finished = spans.get_finished_spans()
    assert len(finished) == calls
    attrs = [dict(s.attributes or {}) for s in finished]
    assert {s.name for s in finished} == {f"chat {MODEL}"}
    for a in attrs:
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "anthropic"
        assert a["gen_ai.request.model"] == MODEL
        assert a["llm_policy.policy.name"] == "test-policy"
        assert a["llm_policy.strategy"] in {"cache", "batch+cache"}
    batched = [a for a in attrs if "llm_policy.batch.id" in a]
    assert len(batched) == 4 and {a["llm_policy.rule"] for a in batched} == {"indexing"}
    read = sum(a["gen_ai.usage.cache_read.input_tokens"] for a in attrs)
    written = sum(a["gen_ai.usage.cache_creation.input_tokens"] for a in attrs)
    assert (read, written) == (bill["cache_read_tokens"], bill["cache_write_tokens"])
    every_input = bill["input_tokens"] + bill["cache_read_tokens"] + bill["cache_write_tokens"]
    assert sum(a["gen_ai.usage.input_tokens"] for a in attrs) == every_input
    assert sum(a["gen_ai.usage.output_tokens"] for a in attrs) == bill["output_tokens"]

    points = _otel_points(reader)
    unit, usage = points["gen_ai.client.token.usage"]
    assert unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p.sum for p in usage}
    assert by_type == {"input": every_input, "output": bill["output_tokens"]}
    assert all(p.attributes["gen_ai.provider.name"] == "anthropic" for p in usage)
    unit, durations = points["gen_ai.client.operation.duration"]
    assert unit == "s" and sum(p.count for p in durations) == calls
    unit, costs = points["llm_policy.cost"]
    realized = sum(p.value for p in costs if p.attributes["llm_policy.cost.kind"] == "realized")
    assert unit == "USD" and realized == pytest.approx(bill["cost_usd"], abs=1e-6)


def test_no_label_carries_a_call_site_or_an_id(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    telemetry: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    hub, _, _ = telemetry
    _run(make_engine().attach_telemetry(hub))
    labels = {
        key for metric in hub.registry.collect() for s in metric.samples for key in s.labels if key != "le"
    }
    assert labels <= {"kind", "model", "strategy", "applied", "reason"}


def test_the_optional_endpoint_serves_the_registry() -> None:
    import socket

    hub = Telemetry(registry=CollectorRegistry())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub.serve(port)
    hub.sink().write(
        {"id": "dec_0", "time": "2026-11-25T05:00:00.000Z", "model": MODEL, "provider": "anthropic",
         "transport": "direct", "call_site": "chat.x", "call": "invoke", "strategy": "cache", "applied": True,
         "latency_ms": 12.0, "usage": {"input_tokens": 3, "cache_read_input_tokens": 5,
         "cache_creation_input_tokens": 0, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
         "output_tokens": 7}}
    )  # fmt: skip
    body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert f'llm_policy_tokens_total{{kind="cache_read",model="{MODEL}"}} 5.0' in body
    assert 'llm_policy_decisions_total{applied="true",strategy="cache"} 1.0' in body


def test_pool_gauges_read_the_pool_at_scrape_time(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    telemetry: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    hub, _, _ = telemetry
    engine = make_engine().attach_telemetry(hub)  # indexing: pools of 4, sent after 1 s
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models=MODEL))
    site = {"metadata": {"call_site": "indexing.summary"}}

    async def two_pooled() -> tuple[float, float]:
        calls = [asyncio.ensure_future(llm.ainvoke([("system", DOC), ("user", f"Part {i}.")], config=site))
                 for i in range(2)]  # fmt: skip
        await asyncio.sleep(0.4)  # both are pooled: the pool waits for 4 or for 1 s
        seen = (
            _sample(hub.registry, "llm_policy_pool_depth"),
            _sample(hub.registry, "llm_policy_pool_oldest_age_seconds"),
        )
        await asyncio.gather(*calls)
        return seen

    depth, age = asyncio.run(two_pooled())
    assert depth == 2 and 0 < age < 1
    assert _sample(hub.registry, "llm_policy_pool_depth") == 0
    assert _sample(hub.registry, "llm_policy_batch_requests_in_flight") == 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_port_in_the_environment_serves_metrics_with_no_code(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("LLM_POLICY_METRICS_PORT", str(port))
    llm = wrap_factory(get_generator_model, make_engine())("anthropic", ai_model_config(models=MODEL))
    llm.invoke([("system", DOC), ("user", "Hello?")], config={"metadata": {"call_site": "chat.agent.x"}})
    body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'llm_policy_decisions_total{applied="true",strategy="cache"}' in body


def test_a_port_already_taken_leaves_the_engine_working(
    make_engine: Callable[..., PolicyEngine],
    anthropic_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("LLM_POLICY_METRICS_PORT", str(taken.getsockname()[1]))
        engine = make_engine()
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models=MODEL))
    reply = llm.invoke([("user", "Hello?")], config={"metadata": {"call_site": "chat.agent.x"}})
    assert reply.content
    assert "metrics endpoint not started" in caplog.text
