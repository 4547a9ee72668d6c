"""What a call cost, and what the same call would have cost without the policy.

Both figures come from the capabilities' price table. The counterfactual is the same
tokens billed as if no policy had touched the call: every input token (read, written
or plain) as plain input, the output as output, at the standard tier. The difference
is what the policy saved (negative when a cache write was never read back).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from engine.providers.anthropic.capabilities import Capabilities, ModelInfo, Usage, capabilities

__all__ = ["account", "call_costs", "usage_fields"]


@lru_cache(maxsize=256)
def _model(caps: Capabilities, model: str) -> ModelInfo:
    """The family of ``model`` in ``caps`` (a new table, e.g. after an override, is a new key)."""
    return caps.model(model)


def account(model: str, usage: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """``usage_fields`` and ``call_costs`` of one response, reading its usage once."""
    parsed = Usage.from_api(usage)
    return _fields(parsed, usage), _costs(model, parsed)


def usage_fields(usage: dict[str, Any]) -> dict[str, Any]:
    """The API ``usage`` reduced to the fields the log keeps (all counts, tier)."""
    return _fields(Usage.from_api(usage), usage)


def _fields(parsed: Usage, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_tokens": parsed.input_tokens,
        "cache_creation_input_tokens": parsed.cache_write_tokens,
        "cache_write_5m_tokens": parsed.cache_write_5m_tokens,
        "cache_write_1h_tokens": parsed.cache_write_1h_tokens,
        "cache_read_input_tokens": parsed.cache_read_tokens,
        "output_tokens": parsed.output_tokens,
        "service_tier": "batch" if parsed.batch else str(usage.get("service_tier") or "standard"),
    }


def call_costs(model: str, usage: dict[str, Any]) -> dict[str, float]:
    """``realized_usd``, ``counterfactual_usd`` and ``saved_usd`` of one response's usage."""
    return _costs(model, Usage.from_api(usage))


def _costs(model: str, parsed: Usage) -> dict[str, float]:
    caps = capabilities()
    info = _model(caps, model)
    realized = info.cost(parsed, batch_multiplier=caps.multipliers["batch"])
    # The same tokens with no policy: all input at the plain input price, standard tier.
    every_input = parsed.input_tokens + parsed.cache_write_tokens + parsed.cache_read_tokens
    counterfactual = (every_input * info.prices.input + parsed.output_tokens * info.prices.output) / 1e6
    return {
        "realized_usd": round(realized, 8),
        "counterfactual_usd": round(counterfactual, 8),
        "saved_usd": round(counterfactual - realized, 8),
    }
