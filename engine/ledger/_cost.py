"""What a call cost, and what the same call would have cost without the policy.

Both figures come from the capabilities' price table. The counterfactual is the same
tokens billed as if no policy had touched the call: every input token (read, written
or plain) as plain input, the output as output, at the standard tier. The difference
is what the policy saved (negative when a cache write was never read back).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from engine.providers.anthropic.capabilities import Capabilities, ModelInfo, Usage, capabilities

if TYPE_CHECKING:
    from engine.providers.anthropic.blocks import Block

__all__ = ["account", "call_costs", "split_writes", "usage_fields"]


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


def split_writes(blocks: Sequence[Block], usage: dict[str, Any]) -> dict[str, int]:
    """The 5m/1h split of ``cache_creation_input_tokens`` from the markers of the request sent.

    A stream's final usage (``message_delta``, and LangChain's summed chunks) gives the
    written total but not its TTLs. The API bills by the mixed-TTL rule: after the hit
    ``A`` (the read tokens end there), the 1h run goes to the last 1h marker ``B``, the
    5m run from there to the last marker. The same rule on the request's own markers
    and token counts recovers the split. The local estimate is first scaled to the
    API's count (read + written is exactly the prefix up to the last marker): over a
    long read prefix a few percent of drift exceeds a short block, and a 1h run of one
    small block (a conversation's checkpoint) would otherwise fall before the hit.
    """
    written = int(usage.get("cache_creation_input_tokens") or 0)
    if written <= 0:
        return {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    read = int(usage.get("cache_read_input_tokens") or 0)
    markers = [
        (i, "1h" if b.cache_control.get("ttl") == "1h" else "5m")
        for i, b in enumerate(blocks)
        if b.cache_control is not None
    ]
    estimated = list(accumulate(b.tokens for b in blocks))
    last = estimated[markers[-1][0]] if markers else 0
    scale = (read + written) / last if last > 0 else 1.0
    cum = [c * scale for c in estimated]
    after = [(i, ttl) for i, ttl in markers if cum[i] > read + 0.5]
    if not after:
        return {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0}
    one_hour = [i for i, ttl in after if ttl == "1h"]
    span = cum[after[-1][0]] - read
    w1h_float = (cum[one_hour[-1]] - read) if one_hour else 0.0
    w1h = written if span <= 0 or w1h_float >= span else round(written * w1h_float / span)
    return {"ephemeral_5m_input_tokens": written - w1h, "ephemeral_1h_input_tokens": w1h}
