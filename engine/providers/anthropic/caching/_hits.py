"""How often batch items actually read their cache entries, learned per call site.

Cache hits inside a Message Batch are best effort (the docs quote 30%-98%): items
run concurrently, and a cold batch may read nothing. Whether a marker pays in a
batch depends on that rate, so the engine learns it from what batches did: each
batch item that carried a marker on a prefix expected to be cached reports
whether its usage showed a read. The estimate per call site is a running share
over the most recent items, starting from a prior of ``PRIOR_HITS`` in
``PRIOR_ITEMS`` (an even chance) so the first batches neither trust nor distrust
caching blindly.

It also keeps what deciding batch-or-direct needs besides the rate: each site's
mean output tokens, and a turn counter that sends every ``EXPLORE_EVERY``-th
call of a site that goes direct through a batch anyway, so the rate keeps being
measured.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

__all__ = ["PRIOR_HITS", "PRIOR_ITEMS", "BatchHitRates"]

PRIOR_HITS = 1.0
PRIOR_ITEMS = 2.0
WINDOW = 500
MAX_SITES = 1024
EXPLORE_EVERY = 20


class BatchHitRates:
    """Thread-safe per-call-site hit shares of batch items (bounded memory)."""

    def __init__(self, *, window: int = WINDOW) -> None:
        self._sites: OrderedDict[str, deque[float]] = OrderedDict()
        self._outputs: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._turns: OrderedDict[str, int] = OrderedDict()
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

    def observe_output(self, call_site: str, tokens: int) -> None:
        """One answered call's output tokens (an exponential mean over the recent ones)."""
        with self._lock:
            mean, n = self._outputs.pop(call_site, (0.0, 0))
            weight = 1.0 / min(n + 1, self._window)
            self._outputs[call_site] = (mean + (tokens - mean) * weight, n + 1)
            while len(self._outputs) > MAX_SITES:
                self._outputs.popitem(last=False)

    def mean_output(self, call_site: str) -> float | None:
        """The site's mean output tokens, None before any answer."""
        with self._lock:
            found = self._outputs.get(call_site)
        return None if found is None else found[0]

    def explore(self, call_site: str) -> bool:
        """True once every ``EXPLORE_EVERY`` calls of the site: that one goes through a batch."""
        with self._lock:
            turn = self._turns.pop(call_site, 0) + 1
            self._turns[call_site] = turn
            while len(self._turns) > MAX_SITES:
                self._turns.popitem(last=False)
        return turn % EXPLORE_EVERY == 0
