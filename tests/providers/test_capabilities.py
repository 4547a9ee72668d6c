"""The data table of models and transports: ids land on their family, unknowns are safe,
operators override it without a release."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.providers.anthropic.capabilities import (
    DATA_FILE,
    Usage,
    capabilities,
    load_capabilities,
    normalize_model_id,
)


@pytest.mark.parametrize(
    ("model", "family", "minimum"),
    [
        ("claude-opus-4-5-20251101", "claude-opus-4-5", 4096),
        ("claude-opus-4-20250514", "claude-opus-4", 1024),
        ("claude-opus-4-1", "claude-opus-4-1", 1024),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", 1024),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-haiku-3", 2048),
        ("claude-3-7-sonnet-latest", "claude-sonnet-3-7", 1024),
        ("claude-3-5-haiku-20241022", "claude-haiku-3-5", 2048),
        ("claude-opus-4-6@20260101", "claude-opus-4-6", 4096),
        ("claude-haiku-4-5", "claude-haiku-4-5", 4096),
        ("claude-opus-5", "claude-opus-5", 512),
    ],
)
def test_dated_ids_aliases_and_vendor_ids_land_on_their_family(model: str, family: str, minimum: int) -> None:
    info = capabilities().model(model)
    assert (info.family, info.min_cache_tokens, info.known) == (family, minimum, True)


def test_normalizing_strips_only_what_varies_within_a_family() -> None:
    assert normalize_model_id("eu.anthropic.claude-sonnet-4-6-20260101-v2:0") == "claude-sonnet-4-6"
    assert normalize_model_id("claude-sonnet-4-6") == "claude-sonnet-4-6"


def test_an_unknown_model_is_conservative_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    caps = load_capabilities()
    caplog.set_level(logging.WARNING, logger="llm_policy.capabilities")
    infos = [caps.model("claude-nova-9") for _ in range(50)]
    assert all(i.min_cache_tokens == caps.max_min_cache_tokens and not i.known for i in infos)
    assert infos[0].prices.input == max(i.prices.input for _, i in caps._families)
    assert len([r for r in caplog.records if "claude-nova-9" in r.getMessage()]) == 1


def test_an_operator_file_overrides_rows_and_adds_models(tmp_path: Path) -> None:
    override = tmp_path / "models.yaml"
    override.write_text(
        "limits: {max_cache_markers: 4}\n"
        "models:\n"
        "  - family: claude-opus-4-7\n"
        "    match: [claude-opus-4-7]\n"
        "    min_cache_tokens: 4096\n"
        "    prices: {input: 5, cache_write_5m: 6.25, cache_write_1h: 10, cache_read: 0.5, output: 25}\n"
        "  - family: claude-nova-9\n"
        "    match: [claude-nova-9]\n"
        "    min_cache_tokens: 256\n"
        "    prices: {input: 2, cache_write_5m: 2.5, cache_write_1h: 4, cache_read: 0.2, output: 10}\n",
        encoding="utf-8",
    )
    shipped, caps = load_capabilities(), load_capabilities(override=override)
    assert shipped.model("claude-opus-4-7").min_cache_tokens == 2048
    assert caps.model("claude-opus-4-7-20260301").min_cache_tokens == 4096  # the operator's row wins
    assert caps.model("claude-nova-9").min_cache_tokens == 256 and caps.model("claude-nova-9").known
    assert caps.model("claude-sonnet-4-6").family == "claude-sonnet-4-6"  # the rest is still there
    assert caps.limits["cache_lookback_positions"] == shipped.limits["cache_lookback_positions"]


def test_the_environment_names_the_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "models.yaml"
    override.write_text(
        "models:\n  - family: claude-nova-9\n    match: [claude-nova-9]\n    min_cache_tokens: 128\n"
        "    prices: {input: 1, cache_write_5m: 1.25, cache_write_1h: 2, cache_read: 0.1, output: 5}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LLM_POLICY_MODELS", str(override))
    assert capabilities().model("claude-nova-9").min_cache_tokens == 128
    monkeypatch.delenv("LLM_POLICY_MODELS")
    assert not capabilities().model("claude-nova-9").known


def test_cost_follows_the_price_table_and_the_batch_tier_halves_it() -> None:
    info = capabilities().model("claude-sonnet-4-6")  # 3 / 3.75 / 6 / 0.30 / 15 per million
    usage = Usage(
        input_tokens=1_000_000,
        cache_write_5m_tokens=1_000_000,
        cache_write_1h_tokens=1_000_000,
        cache_read_tokens=1_000_000,
        output_tokens=1_000_000,
    )
    assert info.cost(usage) == pytest.approx(3 + 3.75 + 6 + 0.30 + 15)
    batch = Usage(input_tokens=1_000_000, output_tokens=1_000_000, batch=True)
    assert info.cost(batch) == pytest.approx((3 + 15) / 2)


def test_usage_reads_the_api_fields_including_the_ttl_split() -> None:
    usage = Usage.from_api(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 2000,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 7,
            "service_tier": "batch",
        }
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens, usage.cache_write_tokens) == (
        100,
        200,
        300,
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, usage.batch) == (
        10,
        2000,
        7,
        True,
    )


def test_every_row_of_the_shipped_table_is_complete() -> None:
    caps = load_capabilities(DATA_FILE)
    for _, info in caps._families:
        prices = info.prices
        assert info.min_cache_tokens in (512, 1024, 2048, 4096), info.family
        assert prices.cache_read < prices.input < prices.cache_write_5m < prices.cache_write_1h, info.family
