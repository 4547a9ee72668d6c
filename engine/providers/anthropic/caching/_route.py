"""Batch or direct: what one call is expected to cost each way, at the site's learned batch hit rate.

A batch halves every price, but its items read the cache only by best effort
(the site's learned rate ``q``), and a marked item that misses writes its prefix
again. A direct call reads a live shared prefix for certain, at a tenth of the
input price. When the shared prefix is most of the request and ``q`` is low, the
certain read at full price beats the uncertain one at half price: the call is
cheaper sent direct, however long it could have waited.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.providers.anthropic.capabilities import Prices

__all__ = ["DIRECT_PAYS", "RouteCosts", "route_costs"]

#: How a decision-log reason begins when a poolable call went direct because it costs less
#: (a replay of the log sends that call direct too).
DIRECT_PAYS = "batch: sent direct, it costs less"


@dataclass(frozen=True, slots=True)
class RouteCosts:
    """Expected micro-USD of one call sent direct and sent through a batch."""

    direct: float
    batch: float

    @property
    def direct_pays(self) -> bool:
        return self.direct < self.batch


def route_costs(
    total_tokens: int,
    shared_tokens: int,
    output_tokens: float,
    q: float,
    prices: Prices,
    batch_multiplier: float,
) -> RouteCosts:
    """Both ways of sending a call whose first ``shared_tokens`` are a live cached prefix.

    Direct: the shared prefix read, the rest at the input price, the output at full
    price. Batch: each shared token costs the cheaper of going unmarked (input) and
    marked (read with chance ``q``, else a 5m write); everything at the batch multiplier.
    """
    rest = max(0, total_tokens - shared_tokens)
    direct = shared_tokens * prices.cache_read + rest * prices.input + output_tokens * prices.output
    per_shared = min(prices.input, q * prices.cache_read + (1.0 - q) * prices.cache_write_5m)
    batch = batch_multiplier * (
        shared_tokens * per_shared + rest * prices.input + output_tokens * prices.output
    )
    return RouteCosts(direct, batch)
