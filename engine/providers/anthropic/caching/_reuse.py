"""What a call site has sent before: the evidence that a prefix will be read again.

The allocator only pays the cache-write premium where reuse is expected. Part of
that evidence is memory: the prefixes (by the same hashes the emulator caches by)
each call site sent recently, and the gaps between a prefix's sightings, which
``ttl: auto`` turns into a 5m or 1h choice.

Observations made at the very instant of the current request do not count as
evidence for it (an entry is readable only after the response that wrote it has
started), which also keeps the allocator idempotent: applying it again to its own
output at the same ``now`` sees the same evidence.

Memory is bounded: a fixed number of call sites (least recently used evicted),
and per call site a fixed number of prefix hashes and gap samples.
"""

from __future__ import annotations

import statistics
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["ReuseTracker", "Sighting", "SiteMemory"]

MAX_SITES = 1024
MAX_HASHES_PER_SITE = 8192
MAX_GAPS_PER_SITE = 64


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a call site sent before ``now``: per prefix, the site's last request, reuse gaps."""

    seen: list[float | None]
    last_request: float | None
    median_gap: float | None
    gaps: tuple[float, ...] = ()


@dataclass
class SiteMemory:
    """One call site: prefix hash -> (previous, last) sighting; recent reuse gaps."""

    seen: OrderedDict[bytes, tuple[float | None, float]] = field(default_factory=OrderedDict)
    gaps: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_GAPS_PER_SITE))
    requests: tuple[float | None, float | None] = (None, None)

    def last_request_before(self, now: float) -> float | None:
        previous, last = self.requests
        if last is not None and last < now:
            return last
        return previous if previous is not None and previous < now else None

    def last_before(self, digest: bytes, now: float) -> float | None:
        """The latest sighting of ``digest`` strictly before ``now``."""
        entry = self.seen.get(digest)
        if entry is None:
            return None
        previous, last = entry
        if last < now:
            return last
        return previous if previous is not None and previous < now else None

    def gaps_before(self, now: float) -> tuple[float, ...]:
        return tuple(gap for at, gap in self.gaps if at < now)


class ReuseTracker:
    """Thread-safe, bounded memory of prefixes per call site."""

    def __init__(self, *, max_sites: int = MAX_SITES, max_hashes: int = MAX_HASHES_PER_SITE) -> None:
        self._sites: OrderedDict[str, SiteMemory] = OrderedDict()
        self._max_sites = max_sites
        self._max_hashes = max_hashes
        self._lock = threading.Lock()

    def lookup(self, call_site: str, digests: list[bytes], now: float) -> Sighting:
        """For each digest its latest earlier sighting, the site's last request, its reuse gaps."""
        with self._lock:
            site = self._sites.get(call_site)
            if site is None:
                return Sighting([None] * len(digests), None, None)
            gaps = site.gaps_before(now)
            return Sighting(
                [site.last_before(d, now) for d in digests],
                site.last_request_before(now),
                statistics.median(gaps) if gaps else None,
                gaps,
            )

    def record(self, call_site: str, digests: list[bytes], now: float, *, horizon_s: float) -> None:
        """Remember that ``digests`` were sent at ``now``; note the gap of the longest reused one.

        Only gaps shorter than ``horizon_s`` (the longest TTL) are sampled: a prefix
        seen again after the longest TTL could not have been read anyway.
        """
        with self._lock:
            site = self._site(call_site)
            if site.requests[1] is None or site.requests[1] < now:
                site.requests = (site.requests[1], now)
            longest_gap: float | None = None
            for digest in digests:
                entry = site.seen.pop(digest, None)
                if entry is None:
                    site.seen[digest] = (None, now)
                    continue
                last = entry[1]
                if last < now:
                    longest_gap = now - last
                    site.seen[digest] = (last, now)
                else:
                    site.seen[digest] = entry
            while len(site.seen) > self._max_hashes:
                site.seen.popitem(last=False)
            if longest_gap is not None and longest_gap < horizon_s:
                site.gaps.append((now, longest_gap))

    def _site(self, call_site: str) -> SiteMemory:
        site = self._sites.pop(call_site, None) or SiteMemory()
        self._sites[call_site] = site
        while len(self._sites) > self._max_sites:
            self._sites.popitem(last=False)
        return site
