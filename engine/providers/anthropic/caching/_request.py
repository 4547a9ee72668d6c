"""One request as the allocator sees it: positions, prefix hashes and lengths, limits."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from engine.providers.anthropic.blocks import Block, iter_blocks, prefix_hashes
from engine.providers.anthropic.caching._anchors import Anchors, find_anchors
from engine.providers.anthropic.capabilities import Capabilities, ModelInfo, TransportInfo

__all__ = ["RequestView"]


@dataclass(frozen=True, slots=True)
class RequestView:
    params: dict[str, Any]
    blocks: list[Block]
    hashes: list[bytes]
    prefix_tokens: list[int]
    anchors: Anchors
    model: ModelInfo
    transport_name: str
    transport: TransportInfo
    max_markers: int
    lookback: int
    #: Estimates within ``minimum / band[0]`` and ``minimum * band[1]`` are counted exactly.
    exact_band: tuple[float, float] = (2.5, 1.25)

    @classmethod
    def build(cls, params: dict[str, Any], caps: Capabilities, transport: str) -> RequestView:
        blocks = iter_blocks(params)
        return cls(
            params=params,
            blocks=blocks,
            hashes=prefix_hashes(params, blocks),
            prefix_tokens=list(accumulate(b.tokens for b in blocks)),
            anchors=find_anchors(params, blocks),
            model=caps.model(str(params.get("model", ""))),
            transport_name=transport,
            transport=caps.transport(transport),
            max_markers=int(caps.limits["max_cache_markers"]),
            lookback=int(caps.limits["cache_lookback_positions"]),
            exact_band=_band(caps.limits.get("exact_count_band")),
        )

    @property
    def allows_1h(self) -> bool:
        return self.transport.ttl_1h and self.model.ttl_1h

    def why_no_1h(self) -> str:
        if not self.transport.ttl_1h:
            return f"the {self.transport_name} transport takes no 1h TTL"
        return f"model {self.params.get('model')!r} takes no 1h TTL"

    def path(self, index: int) -> str:
        return self.blocks[index].dotted

    def hex(self, index: int) -> str:
        return self.hashes[index].hex()


def _band(raw: object) -> tuple[float, float]:
    if isinstance(raw, dict):
        return float(raw.get("below", 2.5)), float(raw.get("above", 1.25))
    return 2.5, 1.25
