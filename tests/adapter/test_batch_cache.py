"""Batch x cache on the emulator: warm a shared prefix once, then mark batch items only where it pays.

The emulator runs batch items concurrently (a cold batch reads nothing) and lets each
item read an available entry with a set probability (``batch_cache_hit_rate``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.conftest import decisions, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

session_loop = pytest.mark.asyncio(loop_scope="session")

SITE = "indexing.doc_extraction.extract_metadata"
SYSTEM = "Extract departments, categories, sentiment and a summary of the document. " * 70  # ~1,300
RULES = """\
- name: indexing
  match: {callSite: "indexing.*"}
  cache: {mode: explicit, ttl: auto, breakpoints: [system]}
  batch: {mode: accumulate, maxRequests: 8, maxWait: 30s}
"""


async def _extract(engine: PolicyEngine, documents: int, first: int = 0, *, keyed: bool = False) -> None:
    """Extract ``documents`` documents; ``keyed``: each carries an idempotency key (a redelivery
    of the same document is answered from the journal)."""
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config(models="claude-sonnet-4-6"))

    def config(k: int) -> dict[str, Any]:
        key = {"llm_policy_idempotency_key": f"doc-{k}"} if keyed else {}
        return {"metadata": {"call_site": SITE, **key}}

    await asyncio.gather(
        *(
            llm.ainvoke([("system", SYSTEM), ("user", f"document {k}")], config=config(k))
            for k in range(first, first + documents)
        )
    )


@session_loop
async def test_a_shared_prefix_is_warmed_once_at_1h_and_batch_items_read_it(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    anthropic_env.state.config.update({"batch_cache_hit_rate": 1.0})
    engine = make_engine(rules=RULES)
    await _extract(engine, 8)
    seen = received(anthropic_env)
    warm = [e for e in seen if e["tier"] == "standard"]
    items = [e for e in seen if e["tier"] == "batch"]
    assert len(warm) == 1 and len(items) == 8
    assert warm[0]["body"]["max_tokens"] == 0
    assert warm[0]["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] > 1024
    assert all(e["body"]["system"][-1]["cache_control"]["ttl"] == "5m" for e in items)
    assert all(e["usage"]["cache_read_input_tokens"] > 1024 for e in items), "a warm batch reads"
    engine.log.close()
    logged = decisions(tmp_path)
    assert sum(1 for r in logged if any(m["source"] == "prewarm" for m in r["markers"])) == 1
    assert engine.batch_hit_rate(SITE) == pytest.approx(0.9), "learned from the reads the items reported"


@session_loop
async def test_a_warm_entry_is_not_written_again_while_it_lives(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any
) -> None:
    anthropic_env.state.config.update({"batch_cache_hit_rate": 1.0})
    engine = make_engine(rules=RULES)
    await _extract(engine, 8)
    await _extract(engine, 8, first=8)
    assert sum(1 for e in received(anthropic_env) if e["tier"] == "standard") == 1


@session_loop
async def test_batches_that_rarely_read_go_without_markers_and_without_a_warm(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any
) -> None:
    engine = make_engine(rules=RULES)
    for _ in range(20):  # what earlier batches of this site reported: one read in ten
        engine.batch_hits().observe(SITE, False)
    engine.batch_hits().observe(SITE, True)
    await _extract(engine, 8)
    seen = received(anthropic_env)
    assert [e["tier"] for e in seen] == ["batch"] * 8
    assert "cache_control" not in str([e["body"] for e in seen])


@session_loop
@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
async def test_plan_on_the_decision_log_predicts_the_bill_and_report_matches_it(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path, rate: float
) -> None:
    """The plan replays the log to within 2% of the bill, whatever the batches read.

    The engine starts from an even prior and learns from its batches' usage: at 0.0
    the first batch writes at 5m and reads nothing, so later batches go without markers.
    The replay learns the same way, and takes each marked item's draw (read or not)
    from its logged usage, so a rate strictly between 0 and 1 is not an expectation set
    against one sample.
    """
    import httpx

    from engine.plan import plan_policy, read_trace, savings_report

    anthropic_env.state.config.update({"batch_cache_hit_rate": rate})
    engine = make_engine(rules=RULES)
    for round_ in range(3):
        await _extract(engine, 8, first=8 * round_)
    await engine.aclose()
    bill = httpx.get(f"{anthropic_env.base_url}/_emulator/billing").json()["cost_usd"]
    log = tmp_path / "decisions.jsonl"
    assert savings_report(log)["total"]["realized_usd"] == pytest.approx(bill, rel=0.01)
    predicted = plan_policy(read_trace(log), str(tmp_path / "policy.yaml")).predicted.cost_usd
    assert predicted == pytest.approx(bill, rel=0.02)


@session_loop
async def test_when_batches_rarely_read_a_shared_prefix_the_calls_go_direct_and_read_it(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    """A batch item reads its ~1,300-token shared prompt one time in ten here; a direct call
    reads it for certain at a tenth of the price, which beats half price on the whole prompt.
    Once the site has shown that (its batches' reads, its answers' size, the prefix reused),
    its calls go direct, each logged with why, and `plan` replays them as sent."""
    from engine.adapter._route import MIN_OBSERVED
    from engine.plan import plan_policy, read_trace

    anthropic_env.state.config.update({"batch_cache_hit_rate": 0.1})
    engine = make_engine(rules=RULES)
    for n in range(MIN_OBSERVED):  # what earlier batches of this site reported: one read in ten
        engine.batch_hits().observe(SITE, n % 10 == 0)
    await _extract(engine, 8)  # the prefix is new to this engine: batched
    assert [e["tier"] for e in received(anthropic_env)] == ["batch"] * 8
    for round_ in range(1, 3):
        await _extract(engine, 1, first=8 * round_)  # a first direct call writes the prefix
        await _extract(engine, 7, first=8 * round_ + 1)
    await engine.aclose()
    later = received(anthropic_env)[8:]
    assert [e["tier"] for e in later] == ["standard"] * 16
    assert sum(e["usage"]["cache_read_input_tokens"] > 1024 for e in later) >= 14
    logged = [r for r in decisions(tmp_path) if r.get("usage")]
    direct = [
        r for r in logged if any(str(x).startswith("batch: sent direct, it costs less") for x in r["reasons"])
    ]
    assert len(direct) == 16
    bill = httpx.get(f"{anthropic_env.base_url}/_emulator/billing").json()["cost_usd"]
    predicted = plan_policy(read_trace(tmp_path / "decisions.jsonl"), str(tmp_path / "policy.yaml"))
    assert predicted.predicted.cost_usd == pytest.approx(bill, rel=0.02)


@session_loop
async def test_one_call_in_twenty_still_goes_through_a_batch_so_the_hit_rate_stays_measured(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any
) -> None:
    from engine.adapter._route import MIN_OBSERVED
    from engine.providers.anthropic.caching._hits import EXPLORE_EVERY

    anthropic_env.state.config.update({"batch_cache_hit_rate": 0.1})
    engine = make_engine(rules=RULES.replace("maxWait: 30s", "maxWait: 1s"))  # the explored call waits alone
    for n in range(MIN_OBSERVED):
        engine.batch_hits().observe(SITE, n % 10 == 0)
    await _extract(engine, 8)
    for k in range(EXPLORE_EVERY):
        await _extract(engine, 1, first=8 + k)
    await engine.aclose()
    tiers = [e["tier"] for e in received(anthropic_env)][8:]
    assert tiers.count("batch") == 1 and len(tiers) == EXPLORE_EVERY


@session_loop
async def test_answers_redelivered_from_the_journal_cost_nothing_in_the_log_the_report_or_the_plan(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    import httpx

    from engine.plan import plan_policy, read_trace, savings_report

    anthropic_env.state.config.update({"batch_cache_hit_rate": 1.0})
    engine = make_engine(rules=RULES)
    await _extract(engine, 8, keyed=True)
    await _extract(engine, 8, keyed=True)  # the same eight documents, delivered again
    await engine.aclose()
    assert [e["tier"] for e in received(anthropic_env)].count("batch") == 8, "paid once"
    bill = httpx.get(f"{anthropic_env.base_url}/_emulator/billing").json()["cost_usd"]
    log = tmp_path / "decisions.jsonl"
    again = [r for r in decisions(tmp_path) if any("not paid again" in why for why in r["reasons"])]
    assert len(again) == 8
    assert all(r["usage"] is None and r["cost"]["realized_usd"] == 0.0 for r in again)
    assert savings_report(log)["total"]["realized_usd"] == pytest.approx(bill, rel=0.01)
    result = plan_policy(read_trace(log), str(tmp_path / "policy.yaml"))
    assert result.recorded_usd == pytest.approx(bill, rel=0.01)
    assert result.predicted.cost_usd == pytest.approx(bill, rel=0.02)
