"""What a call site has sent before: the evidence that a prefix will be read again.

The allocator only pays the cache-write premium where reuse is expected. Part of
that evidence is memory, per call site, by the same prefix hashes the emulator
caches by:

- when each prefix was last sent, and how many times in a row it was sent with
  gaps under the longest TTL (its *run*: a prefix sent after a longer gap could
  not have been read, so its run starts again);
- which prefixes were *written* (a marker sat on them in a request that went
  out) and until when that entry lives: only those can be read back; a prefix
  that was merely sent before is no cache entry;
- how runs grow: of the prompts (prefixes a request ended at, not the shared
  heads every request starts with) whose run reached ``k`` sightings, how many
  reached ``k + 1``, alone or as the start of a longer prompt (the chance that
  one more sighting follows, which the break-even of a write needs);
- the gaps between a prefix's sightings, which ``ttl: auto`` weighs against the
  model's prices.

Observations made at the very instant of the current request do not count as
evidence for it (an entry is readable only after the response that wrote it has
started), which also keeps the allocator idempotent: applying it again to its own
output at the same ``now`` sees the same evidence.

Memory is bounded: a fixed number of call sites (least recently used evicted),
and per call site a fixed number of prefix hashes and gap samples.

A request that comes back with an error and no answer (a 429, a refused
connection) is :meth:`ReuseTracker.forget`-ten: it wrote nothing and was no use of
its prompt, and its resend would otherwise count as a repeat that reads back an
entry that was never made.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ReuseTracker", "Sighting", "SiteMemory"]

MAX_SITES = 1024
MAX_HASHES_PER_SITE = 8192
MAX_GAPS_PER_SITE = 64
MAX_RUN = 64
MAX_PENDING_POSITIONS = 32768  #: positions of the newest requests whose record can still be taken back


@dataclass(slots=True)
class _Seen:
    previous: float | None
    last: float
    run: int = 1
    written_until: float | None = None
    #: Whether a request ended here: a whole prompt, not only a shared head.
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a call site sent before ``now``.

    Per position: the latest earlier sighting (``seen``), the run length including
    this request (``runs``) and whether a written entry is alive now (``written``).
    Per site: its last request, its reuse gaps, and the observed chance that a run
    of ``k`` sightings goes on (``continues(k)``).
    """

    seen: list[float | None]
    last_request: float | None
    gaps: tuple[float, ...] = ()
    runs: list[int] = field(default_factory=list)
    written: list[bool] = field(default_factory=list)
    reached: tuple[int, ...] = ()

    @property
    def median_gap(self) -> float | None:
        if not self.gaps:
            return None
        ordered = sorted(self.gaps)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    def continues(self, k: int) -> tuple[float, int]:
        """The observed share of runs of ``k`` sightings that reached ``k + 1``, and of how many."""
        if k < 1 or k >= len(self.reached) or self.reached[k] == 0:
            return 0.0, 0
        nxt = self.reached[k + 1] if k + 1 < len(self.reached) else 0
        return nxt / self.reached[k], self.reached[k]


@dataclass
class SiteMemory:
    """One call site: what each prefix hash did, recent reuse gaps, how runs grow."""

    seen: OrderedDict[bytes, _Seen] = field(default_factory=OrderedDict)
    gaps: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_GAPS_PER_SITE))
    requests: tuple[float | None, float | None] = (None, None)
    reached: Counter[int] = field(default_factory=Counter)

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
        if entry.last < now:
            return entry.last
        return entry.previous if entry.previous is not None and entry.previous < now else None

    def run_at(self, digest: bytes, now: float, horizon_s: float) -> int:
        """The run length ``digest`` reaches if sent at ``now`` (1 for a new or lapsed prefix)."""
        entry = self.seen.get(digest)
        if entry is None:
            return 1
        before = self.last_before(digest, now)
        if before is None or now - before >= horizon_s:
            return 1
        return entry.run + 1 if entry.last < now else entry.run

    def written_alive(self, digest: bytes, now: float) -> bool:
        entry = self.seen.get(digest)
        if entry is None or entry.written_until is None:
            return False
        wrote_before = entry.last < now or entry.previous is not None
        return wrote_before and entry.written_until > now

    def gaps_before(self, now: float) -> tuple[float, ...]:
        return tuple(gap for at, gap in self.gaps if at < now)

    def reached_table(self) -> tuple[int, ...]:
        top = max(self.reached, default=0)
        return tuple(self.reached.get(k, 0) for k in range(top + 1))


_Fields = tuple[float | None, float, int, float | None, bool]


def _fields(entry: _Seen | None) -> _Fields | None:
    """An entry's state, cheap to keep for every position of every recent request."""
    if entry is None:
        return None
    return (entry.previous, entry.last, entry.run, entry.written_until, entry.ended)


@dataclass(slots=True)
class _Undo:
    """What one :meth:`ReuseTracker.record` changed at its call site, to put back."""

    site: str
    requests: tuple[float | None, float | None]
    entries: list[tuple[bytes, _Fields | None, float | None]]  #: each prefix before, its entry's end after
    reached: list[int]
    gap: tuple[float, float] | None


class ReuseTracker:
    """Thread-safe, bounded memory of prefixes per call site."""

    def __init__(
        self,
        *,
        max_sites: int = MAX_SITES,
        max_hashes: int = MAX_HASHES_PER_SITE,
        horizon_s: float = 3600.0,
    ) -> None:
        self._sites: OrderedDict[str, SiteMemory] = OrderedDict()
        self._max_sites = max_sites
        self._max_hashes = max_hashes
        self.horizon_s = horizon_s
        self._pending: OrderedDict[tuple[bytes, float], _Undo] = OrderedDict()
        self._pending_positions = 0
        self._lock = threading.Lock()

    def lookup(self, call_site: str, digests: list[bytes], now: float) -> Sighting:
        """For each digest its latest earlier sighting, run and live entry; the site's statistics."""
        with self._lock:
            site = self._sites.get(call_site)
            if site is None:
                n = len(digests)
                return Sighting([None] * n, None, (), [1] * n, [False] * n)
            return Sighting(
                [site.last_before(d, now) for d in digests],
                site.last_request_before(now),
                site.gaps_before(now),
                [site.run_at(d, now, self.horizon_s) for d in digests],
                [site.written_alive(d, now) for d in digests],
                site.reached_table(),
            )

    def record(
        self,
        call_site: str,
        digests: list[bytes],
        now: float,
        *,
        horizon_s: float | None = None,
        written: Iterable[tuple[int, float]] = (),
    ) -> None:
        """Remember that ``digests`` were sent at ``now``, and the entries the request writes.

        ``written`` holds ``(position, ttl_seconds)`` for each marker in the request
        that went out. The gap of the longest prefix sent before is sampled (a gap
        past the longest TTL too: it tells ``ttl: auto`` how often even 1h lapses),
        and the run it extends is counted in the site's run table.
        """
        horizon = self.horizon_s if horizon_s is None else horizon_s
        with self._lock:
            site = self._site(call_site)
            requests = site.requests
            before = {d: _fields(site.seen.get(d)) for d in digests}
            if site.requests[1] is None or site.requests[1] < now:
                site.requests = (site.requests[1], now)
            longest: float | None = None
            prompt_run: int | None = None
            new_last = False
            for i, digest in enumerate(digests):
                entry = site.seen.pop(digest, None)
                if entry is None:
                    entry = site.seen[digest] = _Seen(None, now)
                    new_last = i == len(digests) - 1
                elif entry.last < now:
                    gap = now - entry.last
                    entry.run = min(MAX_RUN, entry.run + 1) if gap < horizon else 1
                    entry.previous, entry.last = entry.last, now
                    longest = gap
                    if entry.ended:  # a whole earlier prompt, sent again (alone or as a start)
                        prompt_run = entry.run
                site.seen[digest] = entry
                if i == len(digests) - 1:
                    entry.ended = True
            for position, ttl_s in written:
                entry = site.seen.get(digests[position])
                if entry is not None:
                    entry.written_until = max(entry.written_until or 0.0, now + ttl_s)
            while len(site.seen) > self._max_hashes:
                site.seen.popitem(last=False)
            reached: list[int] = []
            if new_last:
                site.reached[1] += 1
                reached.append(1)
            sample: tuple[float, float] | None = None
            if longest is not None:
                sample = (now, longest)
                site.gaps.append(sample)
            if prompt_run is not None and prompt_run > 1:
                site.reached[prompt_run] += 1
                reached.append(prompt_run)
            if digests:
                kept = site.seen
                changed = [(d, old, kept[d].written_until) for d, old in before.items() if d in kept]
                self._remember(digests[-1], now, _Undo(call_site, requests, changed, reached, sample))

    def _remember(self, last: bytes, now: float, undo: _Undo) -> None:
        """Keep ``undo`` for :meth:`forget`; the same request recorded again keeps its first ``before``."""
        old = self._pending.pop((last, now), None)
        if old is not None:
            self._pending_positions -= len(old.entries)
            first = {d: before for d, before, _ in old.entries}
            entries = [(d, first.get(d, before), end) for d, before, end in undo.entries]
            undo = _Undo(old.site, old.requests, entries, old.reached + undo.reached, old.gap or undo.gap)
        self._pending[(last, now)] = undo
        self._pending_positions += len(undo.entries)
        while self._pending_positions > MAX_PENDING_POSITIONS and len(self._pending) > 1:
            _, evicted = self._pending.popitem(last=False)
            self._pending_positions -= len(evicted.entries)

    def forget(self, digests: list[bytes], now: float) -> None:
        """Take back the record of the request with these prefix hashes sent at ``now``.

        For a request that came back with an error and no answer: its sightings, the
        entries it would have written, the gap and the run it counted are put back as
        they were. A prefix another request has touched since is left as it is.
        """
        if not digests:
            return
        with self._lock:
            undo = self._pending.pop((digests[-1], now), None)
            if undo is None:
                return
            self._pending_positions -= len(undo.entries)
            site = self._sites.get(undo.site)
            if site is None:
                return
            for digest, old, written_until in undo.entries:
                current = site.seen.get(digest)
                if current is None or current.last != now or current.written_until != written_until:
                    continue  # another request or a pre-warm has touched it since
                if old is None:
                    del site.seen[digest]
                else:
                    site.seen[digest] = _Seen(*old)
            site.reached.subtract(undo.reached)
            site.reached += Counter()  # drops what fell to zero, as if never counted
            if undo.gap is not None and undo.gap in site.gaps:
                site.gaps.remove(undo.gap)
            if site.requests[1] == now:
                site.requests = undo.requests

    def is_written(self, call_site: str, digest: bytes, now: float) -> bool:
        """Whether an entry this site wrote at ``digest`` is alive at ``now``."""
        with self._lock:
            site = self._sites.get(call_site)
            entry = site.seen.get(digest) if site is not None else None
            return entry is not None and entry.written_until is not None and entry.written_until > now

    def mark_written(self, call_site: str, digest: bytes, now: float, ttl_s: float) -> None:
        """Remember an entry written at ``digest`` outside a placed request (a pre-warm)."""
        with self._lock:
            site = self._site(call_site)
            entry = site.seen.get(digest)
            if entry is None:
                entry = site.seen[digest] = _Seen(None, now)
            entry.written_until = max(entry.written_until or 0.0, now + ttl_s)

    def _site(self, call_site: str) -> SiteMemory:
        site = self._sites.pop(call_site, None) or SiteMemory()
        self._sites[call_site] = site
        while len(self._sites) > self._max_sites:
            self._sites.popitem(last=False)
        return site
