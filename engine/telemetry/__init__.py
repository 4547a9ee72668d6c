"""Metrics and traces in the ecosystem's own terms: OpenTelemetry and Prometheus.

Each decision record the engine writes is also turned into

* an OpenTelemetry span (``chat {model}``) with the GenAI semantic conventions'
  attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
  ``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.usage.cache_creation.input_tokens``)
  plus ``llm_policy.*`` attributes (policy, version, rule, strategy, batch id, cost);
* OpenTelemetry metrics: ``gen_ai.client.token.usage`` and
  ``gen_ai.client.operation.duration`` as the conventions define them, and
  ``llm_policy.*`` counters for tokens by kind, cost and decisions;
* Prometheus ``llm_policy_*`` counters, histograms and gauges with low-cardinality
  labels only (strategy, kind, model, reason: never a call site, rule or id).

No exporter is forced: spans and metrics go to the tracer and meter providers the host
configured (the global ones by default), Prometheus metrics to a registry (the
process's default registry by default) that :func:`serve` can expose on a port::

    telemetry = Telemetry()
    engine = PolicyEngine.from_store(url, name="pipeshub-default", telemetry=telemetry)
    telemetry.serve(9464)        # optional: GET :9464/metrics

or, with no code: ``LLM_POLICY_METRICS_PORT=9464`` (and ``LLM_POLICY_METRICS_ADDR``)
makes every engine of the process report to one telemetry served on that port.
"""

from engine.telemetry._sink import METRICS_ADDR_ENV, METRICS_PORT_ENV, Telemetry, TelemetrySink, from_env

__all__ = ["METRICS_ADDR_ENV", "METRICS_PORT_ENV", "Telemetry", "TelemetrySink", "from_env"]
