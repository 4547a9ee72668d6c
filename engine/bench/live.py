"""The demo's ``--live`` run: a tiny sample against the real API, same code path.

The emulator's billing is not there to read, so each arm's cost is priced from
the ``usage_metadata`` LangChain reports (cache reads and writes by TTL
included) with the capabilities' price table. Batch-tier pricing cannot be seen
from ``usage_metadata``; calls are priced at the standard tier (an upper bound).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.bench.arms import model_caller
from engine.bench.factory import model_config, pipeshub_factory
from engine.bench.workloads import Workload
from engine.providers.anthropic.capabilities import Usage, capabilities
from engine.providers.anthropic.tokens import text_tokens

__all__ = ["estimate_spend", "run_live"]


def estimate_spend(workload: Workload, arms: int = 2) -> float:
    """A generous estimate in USD: every input token at the 1h write price, 256 output tokens a call."""
    info = capabilities().model(workload.model)
    total = 0.0
    for call in workload.calls:
        tokens = sum(text_tokens(str(m.content)) for m in call.messages)
        tokens += sum(text_tokens(str(t)) for t in call.tools)
        total += (tokens * info.prices.cache_write_1h + 256 * info.prices.output) / 1e6
    return total * arms


def _usage(meta: dict[str, Any]) -> Usage:
    details = meta.get("input_token_details") or {}
    read = int(details.get("cache_read") or 0)
    w1h = int(details.get("ephemeral_1h_input_tokens") or 0)
    w5m = int(details.get("ephemeral_5m_input_tokens") or (int(details.get("cache_creation") or 0) - w1h))
    plain = int(meta.get("input_tokens") or 0) - read - w1h - w5m
    return Usage(max(0, plain), w5m, w1h, read, int(meta.get("output_tokens") or 0))


async def _arm(workload: Workload, api_key: str, policy: Path | None) -> dict[str, Any]:
    from langchain_core.callbacks import get_usage_metadata_callback

    engine: Any = None
    factory = pipeshub_factory(None)
    if policy is not None:
        from engine.adapter import PolicyEngine, wrap_factory

        engine = PolicyEngine.from_file(policy)
        factory = wrap_factory(factory, engine)
    caller = model_caller(factory("anthropic", model_config(api_key, workload.model)), with_call_site=True)
    total = Usage()
    with get_usage_metadata_callback() as cb:
        for group in workload.groups():
            await asyncio.gather(*(caller(c) for c in group))
        if engine is not None:
            await engine.aclose()
        for meta in cb.usage_metadata.values():
            u = _usage(dict(meta))
            total = replace(
                total,
                input_tokens=total.input_tokens + u.input_tokens,
                cache_write_5m_tokens=total.cache_write_5m_tokens + u.cache_write_5m_tokens,
                cache_write_1h_tokens=total.cache_write_1h_tokens + u.cache_write_1h_tokens,
                cache_read_tokens=total.cache_read_tokens + u.cache_read_tokens,
                output_tokens=total.output_tokens + u.output_tokens,
            )
    return {"usage": total, "cost_usd": capabilities().model(workload.model).cost(total)}


def run_live(workload: Workload, api_key: str, policy: Path) -> dict[str, dict[str, Any]]:
    """Both arms against the real API; ``{"no-policy": {...}, "policy": {...}}``."""

    async def both() -> dict[str, dict[str, Any]]:
        before = await _arm(workload, api_key, None)
        return {"no-policy": before, "policy": await _arm(workload, api_key, policy)}

    return asyncio.run(both())
