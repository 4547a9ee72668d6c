"""Prompt-cache accounting for one request: which tokens are read, written, or plain input.

A pure function of a request's positions (prefix hash, tokens, marker) and of the
cache entries alive at that moment. Anything that has to bill exactly like the
API calls :func:`account`: the emulator (``engine/emulator/cache.py``, which keeps
entries of its own that also know when they become readable) and the planner
replaying a trace (which stores them with :func:`commit`), so a cost the planner
predicts is the cost the emulator bills.

The rules (ANTHROPIC.md, "Prompt caching"):

- Only a marker whose prefix reaches the model's minimum cacheable length takes
  part; a shorter one is ignored (no read, no write, no error).
- Reads: for each marker, the entry of its own prefix, else walking back one
  position at a time, at most ``lookback`` positions in all (the marker's own
  included), the first live entry found.
- Billing: A = highest position read, B = highest 1h marker after A, C = last
  marker after A. Read price up to A, 1h write for (A, B], 5m write for (B, C],
  plain input after C (after A when no marker follows it).
- Refreshes: the entry at A, and the entry at each marker at or before A whose
  own prefix is cached.
- Writes: one entry per marker after A, keyed by its prefix hash, with its TTL.
- The API's fixed per-request overhead (the data file's ``request_overhead_tokens``)
  is plain input on every request: it follows every prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

__all__ = ["TTL", "Entry", "Outcome", "account", "commit", "request_overhead"]

TTL = Literal["5m", "1h"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A cache entry: alive while ``now < expires``."""

    expires: float
    ttl: TTL


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request's input tokens are billed, and what it does to the cache."""

    input_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    hit: int
    refreshed: tuple[int, ...]
    writes: tuple[tuple[int, TTL], ...]

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens


def _found(marker: int, hashes: Sequence[bytes], lookback: int, alive: Callable[[bytes], bool]) -> int | None:
    for pos in range(marker, max(-1, marker - lookback), -1):
        if alive(hashes[pos]):
            return pos
    return None


def request_overhead() -> int:
    """The fixed input tokens of every request (ANTHROPIC.md, "Later facts")."""
    from engine.providers.anthropic.capabilities import capabilities

    return int(capabilities().limits.get("request_overhead_tokens", 0))


def account(
    hashes: Sequence[bytes],
    tokens: Sequence[int],
    markers: Sequence[TTL | None],
    *,
    min_tokens: int,
    lookback: int,
    alive: Callable[[bytes], bool],
    overhead: int | None = None,
) -> Outcome:
    """Bill one request. ``hashes[i]``/``tokens[i]``/``markers[i]`` describe position ``i``.

    ``alive(h)`` tells whether an entry for prefix hash ``h`` can be read now (the
    caller owns the store, its clock and its isolation per API key). ``overhead``
    defaults to the data file's per-request overhead.
    """
    if overhead is None:
        overhead = request_overhead()
    cum = list(accumulate(tokens))
    total = (cum[-1] if cum else 0) + overhead
    active = [i for i, m in enumerate(markers) if m is not None and cum[i] >= min_tokens]
    found = [_found(i, hashes, lookback, alive) for i in active]
    hit = max((p for p in found if p is not None), default=-1)
    own = {i for i in active if i <= hit and alive(hashes[i])}
    refreshed = tuple(sorted(own | {hit})) if hit >= 0 else ()
    later = [i for i in active if i > hit]
    read = cum[hit] if hit >= 0 else 0
    if not later:
        return Outcome(total - read, read, 0, 0, hit, refreshed, ())
    one_hour = [i for i in later if markers[i] == "1h"]
    b = one_hour[-1] if one_hour else hit
    c = later[-1]
    w1h = cum[b] - read if b > hit else 0
    w5m = cum[c] - (cum[b] if b >= 0 else 0)
    writes = tuple((i, markers[i] or "5m") for i in later)
    return Outcome(total - cum[c], read, w5m, w1h, hit, refreshed, writes)


def commit(
    entries: MutableMapping[bytes, Entry],
    hashes: Sequence[bytes],
    outcome: Outcome,
    now: float,
    ttl_seconds: Mapping[str, int],
) -> None:
    """Apply ``outcome`` to ``entries``: refresh what was read, store what was written."""
    for pos in outcome.refreshed:
        old = entries[hashes[pos]]
        entries[hashes[pos]] = Entry(max(old.expires, now + ttl_seconds[old.ttl]), old.ttl)
    for pos, ttl in outcome.writes:
        entries[hashes[pos]] = Entry(now + ttl_seconds[ttl], ttl)
