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

The reading and billing are ``engine.providers.anthropic.cache_accounting``, shared
with the planner; this module keeps the entries (per API key, with ``ready_at``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.emulator.validate import Prepared
from engine.providers.anthropic.cache_accounting import TTL, account
from engine.providers.anthropic.capabilities import Capabilities

__all__ = ["CacheOutcome", "ItemAccess", "PromptCache"]

_NEVER = float("inf")


@dataclass(slots=True)
class _Entry:
    ttl: str
    expires_at: float
    ready_at: float


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """Token split of one request; ``read + write_5m + write_1h + input == total + overhead``."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    input: int = 0
    hit_index: int | None = None

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


@dataclass(slots=True)
class ItemAccess:
    """How one batch item meets the cache (ANTHROPIC.md, "Batches and caching").

    ``reads`` is the item's draw under the batch hit model: False means it reads
    nothing, however much is available. What it writes goes to ``held``: those
    entries are not readable until the batch worker releases them, when the next
    wave starts (an entry is usable only once the item that wrote it started, and
    items of one wave start together).
    """

    reads: bool = True
    held: list[bytes] | None = None


class PromptCache:
    """The entries one API key has written (keys are isolated from each other)."""

    def __init__(self, caps: Capabilities) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self._lookback = int(caps.limits["cache_lookback_positions"])
        self._ttl_s = {ttl: float(caps.ttl_seconds(ttl)) for ttl in caps.limits["ttl_seconds"]}
        self._sweep_at = 1024

    def live_entries(self, now: float) -> int:
        return sum(1 for e in self._entries.values() if e.expires_at > now)

    def apply(
        self, req: Prepared, now: float, ready_at: float, access: ItemAccess | None = None
    ) -> CacheOutcome:
        """Read, refresh and write for ``req``; return how its input tokens split.

        ``access`` (batch items only) may deny reads and holds the writes back.

        The billing itself is :func:`cache_accounting.account`, the function the planner
        replays traces with, so a predicted cost is the billed one by construction.
        """
        if not req.markers:
            return CacheOutcome(input=req.total_tokens + req.overhead_tokens)
        markers: list[TTL | None] = [None] * len(req.blocks)
        for i, ttl in req.markers:
            markers[i] = "1h" if ttl == "1h" else "5m"
        entries = self._entries

        reads = access is None or access.reads

        def alive(key: bytes) -> bool:
            entry = entries.get(key)
            return reads and entry is not None and entry.expires_at > now and entry.ready_at <= now

        out = account(
            req.hashes,
            [b.tokens for b in req.blocks],
            markers,
            min_tokens=req.info.min_cache_tokens,
            lookback=self._lookback,
            alive=alive,
        )
        for pos in out.refreshed:
            entry = entries[req.hashes[pos]]
            entry.expires_at = now + self._ttl_s[entry.ttl]
        held = access.held if access is not None else None
        for pos, ttl in out.writes:
            key = req.hashes[pos]
            old = entries.get(key)
            if held is None:
                entries[key] = _Entry(ttl, now + self._ttl_s[ttl], ready_at)
            elif old is not None and old.expires_at > now and old.ready_at <= now:
                old.ttl, old.expires_at = ttl, max(old.expires_at, now + self._ttl_s[ttl])
            else:
                entries[key] = _Entry(ttl, now + self._ttl_s[ttl], _NEVER)
                held.append(key)
        if out.writes:
            self._maybe_sweep(now)
        return CacheOutcome(
            read=out.cache_read_tokens,
            write_5m=out.cache_write_5m_tokens,
            write_1h=out.cache_write_1h_tokens,
            input=out.input_tokens,
            hit_index=out.hit if out.hit >= 0 else None,
        )

    def release(self, keys: list[bytes], now: float) -> None:
        """Make entries held back by batch items readable from ``now`` on."""
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry.ready_at == _NEVER:
                entry.ready_at = now

    def _maybe_sweep(self, now: float) -> None:
        """Drop expired entries now and then, so a long run's memory stays flat."""
        if len(self._entries) < self._sweep_at:
            return
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]
        self._sweep_at = max(1024, 2 * len(self._entries))
