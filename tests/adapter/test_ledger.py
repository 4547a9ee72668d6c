"""The decision log: one schema-valid record per call, costs from the price table, nothing secret."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pytest

from engine._resources import resource_path
from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog, DecisionRecord, JsonLinesSink, call_costs
from engine.providers.anthropic.capabilities import capabilities
from tests.adapter.conftest import decisions
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

SCHEMA = json.loads(resource_path("schemas/decision-log.v1.json").read_text(encoding="utf-8"))
SECRET_DOC = "Confidential merger memo: Falcon acquires Osprey. " * 100
API_KEY = "sk-ant-very-secret-key"
RULES = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 5m, breakpoints: [system]}
"""


def test_schema_names_exactly_the_record_fields() -> None:
    fields = {f.name for f in dataclasses.fields(DecisionRecord)}
    assert set(SCHEMA["properties"]) == fields | {"schema"} == set(SCHEMA["required"])
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _calls(engine: PolicyEngine) -> type[BaseException]:
    """Four calls, the last rejected by the API; returns the class the host saw raised."""
    config = ai_model_config(models="claude-sonnet-4-6", apiKey=API_KEY)
    llm = wrap_factory(get_generator_model, engine)("anthropic", config)
    messages = [("system", SECRET_DOC), ("user", "What does the memo say about Osprey?")]
    llm.invoke(messages, config={"metadata": {"call_site": "chat.agent.complete"}})
    list(llm.stream(messages, config={"metadata": {"call_site": "chat.agent.stream"}}))
    llm.invoke(messages, config={"metadata": {"call_site": "other.site"}})
    with pytest.raises(anthropic.BadRequestError) as raised:
        llm.bind(tool_choice={"type": "any"}).invoke(messages, config={"metadata": {"call_site": "chat.x"}})
    return type(raised.value)


def test_records_are_valid_and_hold_no_prompt_text_or_key(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    raised = _calls(make_engine(rules=RULES))
    text = (tmp_path / "decisions.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 4
    for record in records:
        jsonschema.validate(record, SCHEMA)
    for secret in ("Falcon", "Osprey", "merger", API_KEY, "sk-ant"):
        assert secret not in text
    invoke, stream, unmatched, failed = records
    assert (invoke["rule"], invoke["strategy"], invoke["applied"]) == ("chat", "cache", True)
    assert [m["path"] for m in invoke["markers"]] == ["system.0"]
    assert invoke["prefix"][0]["hash"] == invoke["markers"][0]["prefix_hash"]
    assert stream["call"] == "stream" and stream["usage"]["cache_read_input_tokens"] > 0
    assert stream["latency_tolerance"] == "interactive"
    assert unmatched["rule"] is None and unmatched["markers"] == [] and not unmatched["applied"]
    # The class the installed langchain-anthropic raises (1.5 raises the SDK's own).
    assert failed["error"] == raised.__name__ and failed["usage"] is None


def test_costs_follow_the_price_table() -> None:
    usage = {
        "input_tokens": 100,
        "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "cache_read_input_tokens": 5000,
        "output_tokens": 400,
        "service_tier": "standard",
    }
    prices = capabilities().model("claude-sonnet-4-6").prices
    realized = (
        100 * prices.input
        + 1000 * prices.cache_write_5m
        + 2000 * prices.cache_write_1h
        + 5000 * prices.cache_read
        + 400 * prices.output
    ) / 1e6
    counterfactual = (8100 * prices.input + 400 * prices.output) / 1e6
    costs = call_costs("claude-sonnet-4-6", usage)
    assert costs["realized_usd"] == pytest.approx(realized)
    assert costs["counterfactual_usd"] == pytest.approx(counterfactual)
    assert costs["saved_usd"] == pytest.approx(counterfactual - realized)
    batch = call_costs("claude-sonnet-4-6", {**usage, "service_tier": "batch"})
    assert batch["realized_usd"] == pytest.approx(realized * capabilities().multipliers["batch"])
    assert batch["counterfactual_usd"] == pytest.approx(counterfactual)


def test_python_logging_carries_each_record(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_policy.decisions")
    _calls(make_engine(rules=RULES))
    records = [r for r in caplog.records if r.name == "llm_policy.decisions"]
    assert len(records) == 4
    assert [r.llm_policy_decision["call_site"] for r in records][:2] == [
        "chat.agent.complete",
        "chat.agent.stream",
    ]


def test_a_failing_sink_loses_no_call_and_is_reported_once(
    anthropic_env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocked").write_text("a file where the log folder should be", encoding="utf-8")
    sink = JsonLinesSink(tmp_path / "blocked" / "decisions.jsonl")
    path = tmp_path / "policy.yaml"
    from tests.adapter.conftest import policy_text

    path.write_text(policy_text(rules=RULES), encoding="utf-8")
    _calls(PolicyEngine.from_file(path, decision_log=DecisionLog([sink])))
    failures = [r for r in caplog.records if "decision log sink" in r.getMessage()]
    assert len(failures) == 1
    assert decisions(tmp_path) == []


def test_streamed_1h_writes_are_filed_as_1h_and_the_log_matches_the_bill(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    from tests.adapter.conftest import received

    rules = """\
- name: chat
  match: {callSite: "chat.*"}
  cache: {mode: explicit, ttl: 1h, breakpoints: [system]}
"""
    engine = make_engine(rules=rules)
    llm = wrap_factory(get_generator_model, engine)(
        "anthropic", ai_model_config(models="claude-sonnet-4-6", apiKey=API_KEY)
    )
    messages = [("system", SECRET_DOC), ("user", "What does the memo say?")]
    for _ in range(2):
        list(llm.stream(messages, config={"metadata": {"call_site": "chat.agent.stream"}}))
    engine.log.close()
    logged = [r["usage"] for r in decisions(tmp_path)]
    billed = [e["usage"] for e in received(anthropic_env, last=2)]
    assert billed[0]["cache_creation"]["ephemeral_1h_input_tokens"] > 0
    for log, bill in zip(logged, billed, strict=True):
        assert log["cache_write_1h_tokens"] == bill["cache_creation"]["ephemeral_1h_input_tokens"]
        assert log["cache_write_5m_tokens"] == bill["cache_creation"]["ephemeral_5m_input_tokens"]
        assert log["cache_read_input_tokens"] == bill["cache_read_input_tokens"]
        assert log["input_tokens"] == bill["input_tokens"]
        assert log["output_tokens"] == bill["output_tokens"]


def test_shadow_records_carry_what_the_policy_would_have_cost_and_report_shows_it(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    """The shadow estimate of a sequence equals what the same sequence, enforced, is billed."""
    from engine.plan import savings_report

    config = ai_model_config(models="claude-sonnet-4-6", apiKey=API_KEY)
    billed: dict[str, float] = {}
    for mode in ("shadow", "enforce"):
        engine = make_engine(rules=RULES, mode=mode)
        llm = wrap_factory(get_generator_model, engine)("anthropic", config)
        for question in ("What about Osprey?", "And Falcon?", "Who signs?"):
            messages = [("system", SECRET_DOC + mode), ("user", question)]
            llm.invoke(messages, config={"metadata": {"call_site": "chat.agent.complete"}})
        engine.log.close()
        records = decisions(tmp_path)[-3:]
        billed[mode] = sum(r["cost"]["realized_usd"] for r in records)
        if mode == "shadow":
            shadow = records
            report = savings_report(tmp_path / "decisions.jsonl")
    assert all("policy_usd" in r["cost"] for r in shadow)
    would = sum(r["cost"]["policy_usd"] for r in shadow)
    assert would == pytest.approx(billed["enforce"], rel=1e-6)
    assert would < billed["shadow"], "reading the system prompt back costs less than sending it plain"
    total = report["total"]
    assert total["shadow_calls"] == 3
    assert total["shadow_policy_usd"] == pytest.approx(would, abs=1e-6)
    assert total["shadow_saving_pct"] > 0


def test_a_short_1h_run_after_a_long_read_is_filed_as_1h_when_the_estimate_undercounts() -> None:
    """A stream's usage gives the written total only; the split comes from the request's own
    markers. The engine's token estimate runs a few percent below the API's count, which
    over a long read prefix exceeds a short block: the 1h checkpoint on a tool_use block
    (~20 tokens) right after the read must still be filed as 1h."""
    from itertools import accumulate

    from engine.ledger import split_writes
    from engine.providers.anthropic.blocks import iter_blocks

    one_h, five_m = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral", "ttl": "5m"}
    use = {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "x"}, "cache_control": one_h}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "r " * 1400,
        "cache_control": five_m,
    }
    payload = {
        "model": "claude-sonnet-4-6",
        "system": "policy text " * 4000,
        "messages": [
            {"role": "user", "content": "question " * 1000},
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
        ],
    }
    blocks = iter_blocks(payload)
    cum = list(accumulate(b.tokens for b in blocks))
    drift = 1.03  # the API counts 3% more than the estimate, evenly
    usage = {
        "cache_read_input_tokens": round(cum[-3] * drift),
        "cache_creation_input_tokens": round((cum[-1] - cum[-3]) * drift),
        "input_tokens": 3,
    }
    assert blocks[-2].tokens < cum[-3] * (drift - 1), "the drift over the read exceeds the 1h block"
    split = split_writes(blocks, usage)
    assert abs(split["ephemeral_1h_input_tokens"] - blocks[-2].tokens * drift) <= 1, split
    assert sum(split.values()) == usage["cache_creation_input_tokens"]
