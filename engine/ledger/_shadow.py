"""Shadow mode's counterfactual: what the calls would have cost had the policy been enforced.

In shadow mode every request goes out unchanged, so the bill says nothing about
the policy. The engine still decides (markers, batching) and logs it; this keeps
a prompt cache of its own, per credential and model family's prices, in which each
shadow call is billed with the markers the policy would have placed and the batch
tier it would have used, by the same accounting function the emulator and the
planner use. ``cost.policy_usd`` in the record is that figure; ``report`` sums it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from engine.providers.anthropic.cache_accounting import TTL, Entry, account, commit
from engine.providers.anthropic.capabilities import Usage, capabilities

__all__ = ["ShadowBilling"]

MAX_ENTRIES = 200_000


class ShadowBilling:
    """A thread-safe simulated prompt cache (one per engine), bounded in size."""

    def __init__(self) -> None:
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def bill(
        self,
        model: str,
        hashes: Sequence[bytes],
        tokens: Sequence[int],
        markers: Sequence[TTL | None],
        *,
        now: float,
        output_tokens: int,
        batch: bool,
    ) -> float:
        """The USD this call would have cost with ``markers`` (and the batch tier if ``batch``)."""
        caps = capabilities()
        info = caps.model(model)
        ttl_s = {k: int(v) for k, v in caps.limits["ttl_seconds"].items()}
        with self._lock:
            entries = self._entries
            outcome = account(
                hashes,
                tokens,
                markers,
                min_tokens=info.min_cache_tokens,
                lookback=int(caps.limits["cache_lookback_positions"]),
                alive=lambda h: h in entries and entries[h].expires > now,
            )
            commit(entries, hashes, outcome, now, ttl_s)
            while len(entries) > MAX_ENTRIES:
                entries.popitem(last=False)
        usage = Usage(
            input_tokens=outcome.input_tokens,
            cache_write_5m_tokens=outcome.cache_write_5m_tokens,
            cache_write_1h_tokens=outcome.cache_write_1h_tokens,
            cache_read_tokens=outcome.cache_read_tokens,
            output_tokens=output_tokens,
            batch=batch,
        )
        return info.cost(usage, batch_multiplier=caps.multipliers["batch"])
