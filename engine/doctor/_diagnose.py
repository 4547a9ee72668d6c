"""Why one call paid a cache write or missed a read it expected.

A call is compared with the previous call of the same call site, from what the decision
log keeps: the hash of the prefix ending at every cacheable block (``prefix``), the
markers and their prefix hashes, the settings that invalidate a cache without showing
in the blocks (``cache_keys``: hashes of ``tool_choice``, ``thinking``, ``effort``), the
usage and the time. The causes, in the order they are tried:

``api``                the API's own ``cache_miss_reason`` (cache-miss diagnostics), when given
``marker-budget``      the engine's marker was not placed: the caller's markers used all 4 slots
``below-minimum``      the marked prefix is shorter than the model's minimum: nothing is cached
``cold``               the call site's first request seen: a write is expected
``invalidated``        tools, system, tool_choice, thinking or effort changed since the last request
``prefix-changed``     a block of the messages changed: the first block that differs is named
``ttl-expired``        the same prefix, but the entry's TTL ran out before this request (by how much)
``lookback``           the entry is 20 or more blocks before this request's marker
``batch-best-effort``  the call went through a Message Batch, whose cache hits are best effort

Each miss carries what it cost: the tokens written or sent uncached, priced against
reading them from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.ledger._record import epoch_ns
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["CAUSES", "Miss", "diagnose"]

CAUSES = (
    "api",
    "marker-budget",
    "below-minimum",
    "cold",
    "invalidated",
    "prefix-changed",
    "ttl-expired",
    "lookback",
    "batch-best-effort",
)

#: What the allocator writes on a marker it could not place for want of a slot, or
#: because the prefix is below the model's minimum.
_BUDGET = "marker limit is reached"
_SHORT = "-token minimum"


def _limits() -> tuple[int, dict[str, float]]:
    """Positions a read walks back (the marker's own included) and TTL seconds, from the data file."""
    limits = capabilities().limits
    return int(limits["cache_lookback_positions"]), {k: float(v) for k, v in limits["ttl_seconds"].items()}


@dataclass(frozen=True, slots=True)
class Miss:
    cause: str
    detail: str
    cost_usd: float
    block: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "detail": self.detail,
            "cost_usd": round(self.cost_usd, 8),
            "block": self.block,
        }


def _epoch(stamp: str) -> float:
    return epoch_ns(stamp) / 1e9


def _sent(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in record.get("markers") or [] if m.get("action") in ("placed", "kept", "downgraded")]


def _index_of(record: dict[str, Any], prefix_hash: str) -> int | None:
    for i, block in enumerate(record.get("prefix") or []):
        if block["hash"] == prefix_hash:
            return i
    return None


def _cost(record: dict[str, Any], uncached: int = 0, *, over: str = "cache_read") -> float:
    """What the write (or ``uncached`` plain tokens) cost over reading the same tokens, or,
    with ``over="input"``, over sending them uncached (a cold write has nothing to read)."""
    usage = record.get("usage") or {}
    p = capabilities().model(str(record["model"])).prices
    base = float(getattr(p, over))
    scale = 0.5 if usage.get("service_tier") == "batch" else 1.0
    extra = (
        int(usage.get("cache_write_5m_tokens") or 0) * (p.cache_write_5m - base)
        + int(usage.get("cache_write_1h_tokens") or 0) * (p.cache_write_1h - base)
        + uncached * (p.input - base)
    )
    return max(extra, 0.0) * scale / 1e6


def _is_miss(record: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """A write was paid, or markers were asked for and nothing was read or written."""
    usage = record.get("usage")
    if not usage or record.get("error"):
        return False
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    if written > 0:
        return read < _expected_read(record, previous)
    # nothing written: a miss only if a marker was sent, or one was wanted but the caller's
    # markers or the model's minimum kept it out (the engine leaving one out by choice is not)
    wanted = _sent(record) or [m for m in record.get("markers") or [] if _kept_out(m)]
    return bool(wanted) and read == 0


def _kept_out(marker: dict[str, Any]) -> bool:
    reason = str(marker.get("reason", ""))
    return marker.get("action") == "dropped" and (_BUDGET in reason or _SHORT in reason)


def _expected_read(record: dict[str, Any], previous: dict[str, Any] | None) -> int:
    """Tokens the caller could expect to read: the previous request's longest marked prefix
    (any write with no previous request is expected to be read by nobody yet: cold)."""
    if previous is None:
        return 1
    return max((int(m["prefix_tokens"]) for m in _sent(previous)), default=0) or 1


def diagnose(record: dict[str, Any], previous: dict[str, Any] | None) -> Miss | None:
    """The cause of ``record``'s miss, or None when it paid no write and missed no read.

    ``previous`` is the last earlier record of the same call site (None for the first).
    """
    if not _is_miss(record, previous):
        return None
    usage = record.get("usage") or {}
    reason = usage.get("cache_miss_reason")
    if reason:
        return Miss("api", f"the API says: {_text(reason)}", _cost(record))
    if previous is not None and _new_branch(record, previous):
        return None
    return _before_previous(record) or _against_previous(record, previous)


def common_blocks(record: dict[str, Any], previous: dict[str, Any]) -> int:
    """How many leading prefix blocks the two requests share."""
    mine, theirs = record.get("prefix") or [], previous.get("prefix") or []
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a["hash"] != b["hash"]:
            return i
    return min(len(mine), len(theirs))


def _new_branch(record: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Another conversation (or branch) of the call site: it read everything it shared with
    the earlier request that was cached, and wrote only its own new messages. Not a miss."""
    shared = common_blocks(record, previous)
    prefix = record.get("prefix") or []
    if shared >= len(prefix) or prefix[shared]["section"] != "messages" or _changed_setting(record, previous):
        return False
    read = int((record.get("usage") or {}).get("cache_read_input_tokens") or 0)
    cached = [
        int(m["prefix_tokens"])
        for m in _sent(previous)
        if (_index_of(previous, m["prefix_hash"]) or 0) < shared
    ]
    return read > 0 and read >= max(cached, default=0)


def _text(reason: Any) -> str:
    if isinstance(reason, dict):
        return ", ".join(f"{k}={v}" for k, v in reason.items())
    return str(reason)


def _before_previous(record: dict[str, Any]) -> Miss | None:
    """Causes this record shows by itself: a marker never placed, a prefix too short."""
    markers = record.get("markers") or []
    budget = [m for m in markers if m.get("action") == "dropped" and _BUDGET in m.get("reason", "")]
    if budget and not _sent_by_engine(record):
        tokens = max(int(m["prefix_tokens"]) for m in budget)
        detail = (
            f"the caller's markers used every slot; the engine's marker at {budget[0]['path']} was not placed"
        )
        return Miss("marker-budget", detail, _cost(record, uncached=_uncached(record, tokens)))
    minimum = capabilities().model(str(record["model"])).min_cache_tokens
    short = [m for m in markers if int(m["prefix_tokens"]) < minimum]
    if short and all(int(m["prefix_tokens"]) < minimum for m in _sent(record) or short):
        tokens = max(int(m["prefix_tokens"]) for m in short)
        detail = (
            f"the marked prefix is {tokens} tokens, below the {minimum}-token minimum of {record['model']}"
        )
        return Miss("below-minimum", detail, _cost(record, uncached=_uncached(record, tokens)))
    return None


def _sent_by_engine(record: dict[str, Any]) -> bool:
    return any(m.get("source") == "engine" for m in _sent(record))


def _uncached(record: dict[str, Any], tokens: int) -> int:
    usage = record.get("usage") or {}
    return min(tokens, int(usage.get("input_tokens") or 0))


def _against_previous(record: dict[str, Any], previous: dict[str, Any] | None) -> Miss | None:
    if previous is None:
        detail = f"the first request seen from {record['call_site']}: its write is expected"
        return Miss("cold", detail, _cost(record, over="input"))
    changed = _changed_setting(record, previous)
    if changed:
        return Miss("invalidated", f"{changed} changed since the previous request", _cost(record))
    entry = _previous_entry(previous)
    if entry is None:
        return Miss(
            "cold", "the previous request of this call site cached nothing", _cost(record, over="input")
        )
    at, ttl = entry
    mine, theirs = record.get("prefix") or [], previous.get("prefix") or []
    differs = next(
        (i for i in range(min(len(mine), len(theirs), at + 1)) if mine[i]["hash"] != theirs[i]["hash"]), None
    )
    if differs is None and len(mine) <= at:
        differs = len(mine)
    if differs is not None:
        section = theirs[differs]["section"] if differs < len(theirs) else "messages"
        if section in ("tools", "system"):
            return Miss("invalidated", f"{section} changed (block {differs})", _cost(record), differs)
        detail = f"block {differs} of the prefix ({section}) differs from the previous request's"
        return Miss("prefix-changed", detail, _cost(record), differs)
    gap = _epoch(record["time"]) - _epoch(previous["time"]) - (previous.get("latency_ms") or 0.0) / 1000.0
    lookback, ttl_s = _limits()
    if gap > ttl_s[ttl]:
        detail = f"the {ttl} entry expired {gap - ttl_s[ttl]:.0f} s before this request (gap {gap:.0f} s)"
        return Miss("ttl-expired", detail, _cost(record), at)
    last = max((_index_of(record, m["prefix_hash"]) or 0 for m in _sent(record)), default=0)
    if last - at >= lookback:
        detail = f"the cached entry (block {at}) is {last - at} blocks before the marker (block {last})"
        return Miss("lookback", f"{detail}; the API looks back {lookback}", _cost(record), at)
    if record.get("batch_id"):
        detail = f"batch {record['batch_id']}: cache hits inside a Message Batch are best effort"
        return Miss("batch-best-effort", detail, _cost(record), at)
    return None


def _changed_setting(record: dict[str, Any], previous: dict[str, Any]) -> str | None:
    mine, theirs = record.get("cache_keys") or {}, previous.get("cache_keys") or {}
    for key in ("tool_choice", "thinking", "effort"):
        if mine.get(key) != theirs.get(key) and key in mine and key in theirs:
            return key
    return None


def _previous_entry(previous: dict[str, Any]) -> tuple[int, str] | None:
    """Block index and TTL of the longest prefix the previous request had cached (its last marker)."""
    best: tuple[int, str] | None = None
    for m in _sent(previous):
        at = _index_of(previous, m["prefix_hash"])
        if at is not None and (best is None or at > best[0]):
            best = (at, str(m["ttl"]))
    return best
