"""What the prompt cache holds as far as this engine knows, whichever call site wrote it.

The per-site memory (``_reuse``) says what one call site sent before. A
conversation moves between call sites: PipesHub's agent loop asks for a tool call
at one site and streams the answer at another, seconds later. Where a request's
read will stop, and how far a 1h entry reaches, depends on what every site wrote,
so this book keeps entries by prefix hash the way the API does:

- a request with markers reads the furthest live entry its markers' lookback
  finds, refreshes what it reads (at the entry's own TTL), and writes at its
  markers past that;
- a request *ends* at the hash of its whole prompt; the next request that carries
  that prompt on (the conversation's next call, from any site) measures the pause
  after a call from the site that sent it: a *follow gap* of that site.

Follow gaps are what a 1h checkpoint is weighed against: after a call whose
follow-up comes within seconds (a tool call answered at once) a checkpoint buys
nothing; after one whose follow-up often comes more than 5 minutes later, it keeps
the conversation readable.

Like ``_reuse``, what happened at the very instant of a request is no evidence for
it (an entry is readable only once the response that wrote it has started), and
memory is bounded (prefixes and sites least recently used are evicted).

A request is recorded when it goes out; one that comes back with an error and no
answer is :meth:`CacheBook.forget`-ten: a 429 or a connection refused wrote
nothing, and believing otherwise makes its resend weigh a checkpoint against a
cache that is not there (a 1h write of the whole newest turn, taken for free).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CacheBook", "Standing"]

MAX_PREFIXES = 65536
MAX_SITES = 1024
MAX_FOLLOWS_PER_SITE = 64
MAX_PENDING = 4096  #: requests whose record can still be taken back (the newest ones)
_NEVER = float("-inf")


@dataclass(slots=True)
class _Prefix:
    ended_at: float | None = None
    ended_site: str | None = None
    written_at: float = _NEVER
    until: float = _NEVER
    ttl_s: float = 0.0

    def alive(self, now: float) -> bool:
        return self.written_at < now < self.until


@dataclass(frozen=True, slots=True)
class Standing:
    """What the cache holds for one request, as far as this engine knows.

    ``known``: an earlier request of this engine ended at one of its prefixes (the
    conversation's previous call went through here, so ``hit`` and ``checkpoint``
    are worth trusting). ``hit``: the furthest position with a live entry (-1 when
    none); ``checkpoint``: the furthest with a live 1h entry. ``follows``: the
    requesting site's follow gaps, in seconds.
    """

    known: bool = False
    hit: int = -1
    checkpoint: int = -1
    follows: tuple[float, ...] = ()


@dataclass(slots=True)
class _Undo:
    """What one :meth:`CacheBook.record` changed: each entry before and after, the gap it added."""

    entries: list[tuple[bytes, _Prefix | None, _Prefix]]
    gap: tuple[str, tuple[float, float]] | None = None


def _copy(entry: _Prefix) -> _Prefix:
    return _Prefix(entry.ended_at, entry.ended_site, entry.written_at, entry.until, entry.ttl_s)


class CacheBook:
    """Thread-safe, bounded: entries by prefix hash and follow gaps by call site."""

    def __init__(
        self, *, long_ttl_s: float = 3600.0, max_prefixes: int = MAX_PREFIXES, max_sites: int = MAX_SITES
    ) -> None:
        self._long_ttl_s = long_ttl_s
        self._prefixes: OrderedDict[bytes, _Prefix] = OrderedDict()
        self._follows: OrderedDict[str, deque[tuple[float, float]]] = OrderedDict()
        self._max_prefixes = max_prefixes
        self._max_sites = max_sites
        self._pending: OrderedDict[tuple[bytes, float], _Undo] = OrderedDict()
        self._lock = threading.Lock()

    def standing(self, call_site: str, digests: Sequence[bytes], now: float) -> Standing:
        """Where a request with these prefix hashes would read, and its site's follow gaps."""
        known, hit, checkpoint = False, -1, -1
        with self._lock:
            for i, digest in enumerate(digests):
                entry = self._prefixes.get(digest)
                if entry is None:
                    continue
                known = known or (entry.ended_at is not None and entry.ended_at < now)
                if entry.alive(now):
                    hit = i
                    if entry.ttl_s >= self._long_ttl_s:
                        checkpoint = i
            gaps = self._follows.get(call_site, ())
            follows = tuple(gap for at, gap in gaps if at < now)
        return Standing(known, hit, checkpoint, follows)

    def record(
        self,
        call_site: str,
        digests: Sequence[bytes],
        now: float,
        *,
        markers: Sequence[tuple[int, float]] = (),
        lookback: int = 20,
    ) -> None:
        """Remember a request that went out: the pause it ends, what it read, what it wrote.

        ``markers`` holds ``(position, ttl_seconds)`` for each marker whose entry the
        request would write (its prefix reaches the model's minimum).
        """
        if not digests:
            return
        with self._lock:
            gap = self._follow_gap(digests, now)
            alive = [self._alive(d, now) for d in digests]
            hit = -1
            for position, _ in markers:
                for back in range(position, max(-1, position - lookback), -1):
                    if alive[back]:
                        hit = max(hit, back)
                        break
            touched = (
                {digests[p] for p, _ in markers} | {digests[-1]} | ({digests[hit]} if hit >= 0 else set())
            )
            before = {d: self._snapshot(d) for d in touched}
            for position, ttl_s in markers:
                entry = self._entry(digests[position])
                if position > hit:
                    entry.written_at, entry.until, entry.ttl_s = now, now + ttl_s, ttl_s
                elif alive[position]:
                    entry.until = max(entry.until, now + entry.ttl_s)
            if hit >= 0:
                entry = self._entry(digests[hit])
                entry.until = max(entry.until, now + entry.ttl_s)
            last = self._entry(digests[-1])
            last.ended_at, last.ended_site = now, call_site
            while len(self._prefixes) > self._max_prefixes:
                self._prefixes.popitem(last=False)
            changed = [(d, old, _copy(self._prefixes[d])) for d, old in before.items() if d in self._prefixes]
            self._pending[(digests[-1], now)] = _Undo(changed, gap)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)

    def forget(self, digests: Sequence[bytes], now: float) -> None:
        """Take back the record of the request with these prefix hashes sent at ``now``.

        For a request that came back with an error and no answer: what it would have
        written, refreshed and ended is put back as it was, and the pause it ended is
        no follow gap. An entry another request has changed since is left as it is.
        """
        if not digests:
            return
        with self._lock:
            undo = self._pending.pop((digests[-1], now), None)
            if undo is None:
                return
            for digest, old, new in undo.entries:
                current = self._prefixes.get(digest)
                if current is None or current != new:
                    continue
                if old is None:
                    del self._prefixes[digest]
                else:
                    self._prefixes[digest] = old
            if undo.gap is not None:
                site, item = undo.gap
                gaps = self._follows.get(site)
                if gaps is not None and item in gaps:
                    gaps.remove(item)

    def _follow_gap(self, digests: Sequence[bytes], now: float) -> tuple[str, tuple[float, float]] | None:
        """The pause since the request whose whole prompt this one carries on, for that request's site."""
        own = self._prefixes.get(digests[-1])
        if own is not None and own.ended_at == now:
            return None  # this very request, recorded again
        for digest in reversed(digests):
            entry = self._prefixes.get(digest)
            if entry is None or entry.ended_at is None or entry.ended_at >= now or entry.ended_site is None:
                continue
            site = entry.ended_site
            gaps = self._follows.pop(site, None) or deque(maxlen=MAX_FOLLOWS_PER_SITE)
            item = (now, now - entry.ended_at)
            gaps.append(item)
            self._follows[site] = gaps
            while len(self._follows) > self._max_sites:
                self._follows.popitem(last=False)
            return site, item
        return None

    def _snapshot(self, digest: bytes) -> _Prefix | None:
        entry = self._prefixes.get(digest)
        return _copy(entry) if entry is not None else None

    def _alive(self, digest: bytes, now: float) -> bool:
        entry = self._prefixes.get(digest)
        return entry is not None and entry.alive(now)

    def _entry(self, digest: bytes) -> _Prefix:
        entry = self._prefixes.pop(digest, None) or _Prefix()
        self._prefixes[digest] = entry
        return entry
