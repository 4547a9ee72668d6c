"""onUnsupported: what a rule gets when its transport or model lacks a strategy."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from engine.decision import BatchPlan, CachePlan, Decision
from engine.providers.anthropic.capabilities import load_capabilities
from engine.providers.anthropic.transport import UnsupportedError, check_support, transport_for_provider

MODEL = "claude-sonnet-4-5"


def decision(on_unsupported: str = "warn", *, ttl: str = "1h", rule: str = "indexing") -> Decision:
    return Decision(
        strategy="batch+cache",
        rule=rule,
        cache=CachePlan("auto", ttl),  # type: ignore[arg-type]
        batch=BatchPlan("accumulate"),
        policy_name="p",
        revision="r",
        on_unsupported=on_unsupported,  # type: ignore[arg-type]
    )


def test_direct_takes_everything() -> None:
    result = check_support(decision(), transport="direct", model=MODEL)
    assert (result.strategy, result.messages) == ("batch+cache", ())
    assert result.batch == BatchPlan("accumulate") and result.cache == CachePlan("auto", "1h")


@pytest.mark.parametrize("transport", ["custom", "bedrock", "vertex"])
def test_no_batches_off_the_direct_api(transport: str) -> None:
    result = check_support(decision("ignore"), transport=transport, model=MODEL)  # type: ignore[arg-type]
    assert result.batch is None and result.strategy == "cache"
    assert result.messages == (f"the {transport} transport takes no Message Batches: sending direct",)


def test_warn_logs_once_per_rule_not_per_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="llm_policy.transport")
    for _ in range(5):
        check_support(decision(rule="warn-once"), transport="custom", model=MODEL)
    assert len(caplog.records) == 1
    assert "rule 'warn-once': the custom transport takes no Message Batches" in caplog.records[0].getMessage()


def test_error_raises_naming_the_rule() -> None:
    with pytest.raises(
        UnsupportedError, match=r"rule 'indexing': the bedrock transport takes no Message Batches"
    ):
        check_support(decision("error"), transport="bedrock", model=MODEL)


def test_model_without_1h_or_batches(tmp_path: Any) -> None:
    override = tmp_path / "m.yaml"
    override.write_text(
        "models:\n  - family: old\n    match: [claude-old]\n    min_cache_tokens: 1024\n"
        "    ttl_1h: false\n    batches: false\n"
        "    prices: {input: 1, cache_write_5m: 1.25, cache_write_1h: 2, cache_read: 0.1, output: 5}\n"
    )
    caps = load_capabilities(override=override)
    result = check_support(decision("ignore"), transport="direct", model="claude-old", caps=caps)
    assert result.batch is None and result.cache == CachePlan("auto", "5m")
    assert result.messages == (
        "model 'claude-old' takes no Message Batches: sending direct",
        "model 'claude-old' takes no 1h cache TTL: using 5m",
    )


def test_provider_strings_map_to_transports() -> None:
    assert [transport_for_provider(p) for p in ("anthropic", "azureAI", "bedrock", "vertexAI", "other")] == [
        "direct",
        "custom",
        "bedrock",
        "vertex",
        "custom",
    ]
