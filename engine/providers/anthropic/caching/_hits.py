"""How often batch items actually read their cache entries, learned per call site.

Cache hits inside a Message Batch are best effort (the docs quote 30%-98%): items
run concurrently, and a cold batch may read nothing. Whether a marker pays in a
batch depends on that rate, so the engine learns it from what batches did: each
batch item that carried a marker on a prefix expected to be cached reports
whether its usage showed a read. The estimate per call site is a running share
over the most recent items, starting from a prior of ``PRIOR_HITS`` in
``PRIOR_ITEMS`` (an even chance) so the first batches neither trust nor distrust
caching blindly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

__all__ = ["PRIOR_HITS", "PRIOR_ITEMS", "BatchHitRates"]

PRIOR_HITS = 1.0
PRIOR_ITEMS = 2.0
WINDOW = 500
MAX_SITES = 1024


class BatchHitRates:
    """Thread-safe per-call-site hit shares of batch items (bounded memory)."""

    def __init__(self, *, window: int = WINDOW) -> None:
        self._sites: OrderedDict[str, deque[float]] = OrderedDict()
        self._window = window
        self._lock = threading.Lock()

    def observe(self, call_site: str, hit: float) -> None:
        """One batch item's outcome: read (1) or not (0), or a replay's chance that it read."""
        with self._lock:
            seen = self._sites.pop(call_site, None) or deque(maxlen=self._window)
            seen.append(hit)
            self._sites[call_site] = seen
            while len(self._sites) > MAX_SITES:
                self._sites.popitem(last=False)

    def rate(self, call_site: str) -> float:
        """The expected share of this site's batch items that read their entry."""
        with self._lock:
            seen = self._sites.get(call_site)
            hits = sum(seen) if seen else 0
            n = len(seen) if seen else 0
        return (hits + PRIOR_HITS) / (n + PRIOR_ITEMS)

    def observed(self, call_site: str) -> int:
        with self._lock:
            seen = self._sites.get(call_site)
            return len(seen) if seen else 0
