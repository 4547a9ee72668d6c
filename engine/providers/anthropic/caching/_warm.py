"""Batch x cache: which batch items share a cached prefix, and the request that warms it.

Items of one batch run concurrently, so a cold batch reads nothing: every item
writes the shared prefix. The documented remedy is one ordinary request that
writes it at 1h before the batch is sent; the items then read it (as often as the
batch's hit rate allows). This module finds the shared prefix of an item (the
prefix its first marker ends, in ``tools`` or ``system``: shared by construction),
builds the warming request (that prefix, the marker at 1h, ``max_tokens: 0``, so
only the write is billed), and says when the warm pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.providers.anthropic.blocks import iter_blocks, prefix_hashes
from engine.providers.anthropic.caching._edit import PayloadEditor
from engine.providers.anthropic.caching._exact import prefix_payload
from engine.providers.anthropic.capabilities import Capabilities, Prices

__all__ = ["SharedPrefix", "shared_prefix", "warm_pays", "warm_request"]

#: Settings the API refuses together with ``max_tokens: 0`` (a pre-warm).
_NOT_WITH_PREWARM = ("stream", "thinking", "output_config", "tool_choice")


@dataclass(frozen=True, slots=True)
class SharedPrefix:
    """The prefix an item's first marker ends: position, hash, tokens (estimated)."""

    index: int
    digest: bytes
    tokens: int


def shared_prefix(params: dict[str, Any], caps: Capabilities) -> SharedPrefix | None:
    """The item's first marked prefix if it lies in tools/system and reaches the model's minimum."""
    blocks = iter_blocks(params)
    first = next((i for i, b in enumerate(blocks) if b.cache_control is not None), None)
    if first is None or blocks[first].section == "messages":
        return None
    tokens = sum(b.tokens for b in blocks[: first + 1])
    if tokens < caps.model(str(params.get("model", ""))).min_cache_tokens:
        return None
    return SharedPrefix(first, prefix_hashes(params, blocks)[first], tokens)


def warm_request(params: dict[str, Any], shared: SharedPrefix) -> dict[str, Any] | None:
    """The ordinary request that writes ``shared`` at 1h and nothing else; None if it cannot.

    The prefix hash of the warm request at the marker must equal the item's (settings
    that salt the hash, e.g. citations in the item's messages, would make it write a
    different entry): otherwise there is nothing to warm.
    """
    blocks = iter_blocks(params)
    warm = prefix_payload(params, blocks, shared.index)
    warm["max_tokens"] = 0
    for key in ("speed",):
        if key in params:
            warm[key] = params[key]
    editor = PayloadEditor(warm)
    editor.set_marker(blocks[shared.index].path, {"type": "ephemeral", "ttl": "1h"})
    out = editor.root
    if any(k in out for k in _NOT_WITH_PREWARM):
        return None
    warm_blocks = iter_blocks(out)
    if len(warm_blocks) <= shared.index or prefix_hashes(out, warm_blocks)[shared.index] != shared.digest:
        return None
    return out


def warm_pays(items: int, hit_rate: float, prices: Prices, batch_multiplier: float) -> bool:
    """Whether one 1h write at the standard tier pays for the reads it gives ``items`` batch items.

    Without it a cold batch's items write the prefix (5m price, batch tier) and read
    nothing; with it, each reads it with chance ``hit_rate`` instead.
    """
    saved_per_item = hit_rate * (prices.cache_write_5m - prices.cache_read) * batch_multiplier
    return items * saved_per_item > prices.cache_write_1h
