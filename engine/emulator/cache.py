"""One API key's prompt cache: entries keyed by prefix hash, read with the lookback.

The rules (ANTHROPIC.md, "Prompt caching"):

- entries are written only at markers whose prefix reaches the model's minimum;
- a read checks each marker's prefix hash, then walks back one position at a
  time, at most ``cache_lookback_positions`` positions (the marker's own included);
- an entry is usable once the response that wrote it has started (``ready_at``)
  and until its TTL runs out; a hit refreshes the TTL;
- usage follows the mixed-TTL rule: A = highest hit position, B = highest 1h
  marker after A, C = last marker: read up to A, 1h write for B-A, 5m write for
  C-B, plain input after C.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.emulator.validate import Prepared
from engine.providers.anthropic.capabilities import Capabilities

__all__ = ["CacheOutcome", "PromptCache"]


@dataclass(slots=True)
class _Entry:
    ttl: str
    expires_at: float
    ready_at: float


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """Token split of one request; ``read + write_5m + write_1h + input == total``."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    input: int = 0
    hit_index: int | None = None

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


class PromptCache:
    """The entries one API key has written (keys are isolated from each other)."""

    def __init__(self, caps: Capabilities) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self._lookback = int(caps.limits["cache_lookback_positions"])
        self._ttl_s = {ttl: float(caps.ttl_seconds(ttl)) for ttl in caps.limits["ttl_seconds"]}
        self._sweep_at = 1024

    def live_entries(self, now: float) -> int:
        return sum(1 for e in self._entries.values() if e.expires_at > now)

    def apply(self, req: Prepared, now: float, ready_at: float) -> CacheOutcome:
        """Read, refresh and write for ``req``; return how its input tokens split."""
        cum = req.cumulative
        eligible = [(i, ttl) for i, ttl in req.markers if cum[i] >= req.info.min_cache_tokens]
        if not eligible:
            return CacheOutcome(input=req.total_tokens)
        hit = self._read(req, [i for i, _ in eligible], now)
        for i, _ in eligible:
            if hit is not None and i <= hit:
                self._refresh(req.hashes[i], now)
        base = cum[hit] if hit is not None else 0
        later = [(i, ttl) for i, ttl in eligible if hit is None or i > hit]
        if not later:
            return CacheOutcome(read=base, input=req.total_tokens - base, hit_index=hit)
        last = later[-1][0]
        ones = [i for i, ttl in later if ttl == "1h"]
        upto_1h = cum[ones[-1]] if ones else base
        for i, ttl in later:
            self._entries[req.hashes[i]] = _Entry(ttl, now + self._ttl_s[ttl], ready_at)
        self._maybe_sweep(now)
        return CacheOutcome(
            read=base,
            write_1h=upto_1h - base,
            write_5m=cum[last] - upto_1h,
            input=req.total_tokens - cum[last],
            hit_index=hit,
        )

    def _read(self, req: Prepared, marker_positions: list[int], now: float) -> int | None:
        """The highest position whose entry a marker's lookback finds (and refreshes)."""
        best: int | None = None
        for m in marker_positions:
            for j in range(m, max(-1, m - self._lookback), -1):
                if best is not None and j <= best:
                    break
                entry = self._entries.get(req.hashes[j])
                if entry is not None and entry.expires_at > now and entry.ready_at <= now:
                    best = j
                    break
        if best is not None:
            self._refresh(req.hashes[best], now)
        return best

    def _refresh(self, key: bytes, now: float) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > now and entry.ready_at <= now:
            entry.expires_at = now + self._ttl_s[entry.ttl]

    def _maybe_sweep(self, now: float) -> None:
        """Drop expired entries now and then, so a long run's memory stays flat."""
        if len(self._entries) < self._sweep_at:
            return
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]
        self._sweep_at = max(1024, 2 * len(self._entries))
