"""One decision-log record: what the engine decided for one call, and what it cost.

A record holds no prompt text and no credentials. The request's content appears only
as prefix hashes with token counts (``prefix``), which is what a planner needs to
replay traffic under another policy: two calls that share ``prefix[i].hash`` could
have shared a cache entry written at position ``i``.

``to_dict`` is the wire form (schemas/decision-log.v1.json validates it).
"""

from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "SCHEMA_ID",
    "CallShape",
    "DecisionRecord",
    "LatencyTolerance",
    "MarkerRecord",
    "PolicyRef",
    "PrefixBlock",
    "epoch_ns",
    "new_decision_id",
    "prefix_blocks",
    "utc_now",
]

SCHEMA_ID = "llm-policy/decision-log/v1"

CallShape = Literal["invoke", "ainvoke", "stream", "astream", "batch", "abatch"]
#: How long the caller can wait for its answer: ``interactive`` (streaming or a
#: synchronous call: never waits on a batch), ``awaitable`` (a single async call that
#: a pool may hold up to ``maxWait``), ``batch`` (an explicit ``batch``/``abatch``).
LatencyTolerance = Literal["interactive", "awaitable", "batch"]


def new_decision_id() -> str:
    """``dec_`` and 128 random bits in hex (what a uuid4 would carry, without its formatting)."""
    return "dec_" + os.urandom(16).hex()


_second: tuple[int, str] = (-1, "")


def utc_now(at: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds of ``at`` (default now), e.g. ``2026-11-25T05:01:02.123Z``.

    Runs once per LLM call: the formatted second is reused until the clock moves on,
    which makes this several times cheaper than ``datetime.isoformat``.
    """
    global _second
    now = time.time() if at is None else at
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def epoch_ns(stamp: str) -> int:
    """The inverse of :func:`utc_now`: ``2026-11-25T05:01:02.123Z`` in nanoseconds since the epoch."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


@dataclass(frozen=True, slots=True)
class PolicyRef:
    name: str
    version: int | None
    revision: str | None
    mode: Literal["enforce", "shadow"]
    rollout: int


@dataclass(frozen=True, slots=True)
class MarkerRecord:
    """A ``cache_control`` marker in the request sent (or, in shadow mode, that would be)."""

    path: str
    ttl: str
    prefix_tokens: int
    source: str
    action: str
    reason: str
    prefix_hash: str


@dataclass(frozen=True, slots=True)
class PrefixBlock:
    """One cacheable position: the hash of the prefix ending there, and its own tokens.

    ``message`` and ``role`` (positions in ``messages``) and ``markable`` let a replay
    rebuild the request's shape: where the newest user turn starts (the ``history``
    anchor), which blocks can carry a marker.
    """

    hash: str
    tokens: int
    section: str
    message: int | None = None
    role: str | None = None
    markable: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hash": self.hash, "tokens": self.tokens, "section": self.section}
        if self.message is not None:
            out["message"] = self.message
        if self.role is not None:
            out["role"] = self.role
        if not self.markable:
            out["markable"] = False
        return out


@dataclass(slots=True)
class DecisionRecord:
    """Filled in as the call goes: decided, applied, then answered (or failed)."""

    call_site: str
    call_site_source: Literal["metadata", "role", "code"]
    call: CallShape
    latency_tolerance: LatencyTolerance
    model: str
    provider: str
    transport: str
    role: str | None = None
    id: str = field(default_factory=new_decision_id)
    time: str = field(default_factory=utc_now)
    policy: PolicyRef | None = None
    rule: str | None = None
    strategy: str = "direct"
    applied: bool = False
    reasons: list[str] = field(default_factory=list)
    cache: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None
    markers: list[MarkerRecord] = field(default_factory=list)
    prefix: list[PrefixBlock] = field(default_factory=list)
    input_tokens_estimate: int | None = None
    max_tokens: int | None = None
    output_tokens: int | None = None
    batch_id: str | None = None
    evaluation_ms: float = 0.0
    latency_ms: float | None = None
    usage: dict[str, Any] | None = None
    cost: dict[str, float] | None = None
    error: str | None = None
    #: Set when the host sends this model's calls past the engine (``direct-transport``).
    bypass: str | None = None
    #: For a call sent through the ``accumulate`` pool: the requests its batch carried, and
    #: the milliseconds the call waited in the pool (holding the host's slot) before it left.
    pool_fill: int | None = None
    pool_wait_ms: float | None = None
    #: Short hashes of the settings that invalidate a cache without showing in the blocks
    #: (``tool_choice``, ``thinking``, ``effort``): the cache doctor compares them.
    cache_keys: dict[str, str] | None = None
    #: Why this call paid a write or missed a read (``llm-policy doctor``), or None.
    cache_miss: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form. Written by hand, not ``asdict``: it runs once per LLM call."""
        out: dict[str, Any] = {"schema": SCHEMA_ID}
        for name in _FIELDS:
            out[name] = getattr(self, name)
        policy = self.policy
        out["policy"] = None if policy is None else {s: getattr(policy, s) for s in PolicyRef.__slots__}
        out["markers"] = [{s: getattr(m, s) for s in MarkerRecord.__slots__} for m in self.markers]
        out["prefix"] = [b.to_dict() for b in self.prefix]
        out["reasons"] = list(self.reasons)
        out["evaluation_ms"] = round(self.evaluation_ms, 4)
        if self.latency_ms is not None:
            out["latency_ms"] = round(self.latency_ms, 3)
        return out


_FIELDS = tuple(f.name for f in fields(DecisionRecord))


def prefix_blocks(blocks: list[Any], hashes: list[bytes]) -> list[PrefixBlock]:
    """The log's ``prefix`` of a request: per position its hash, tokens, section, message, role."""
    out: list[PrefixBlock] = []
    for b, h in zip(blocks, hashes, strict=True):
        in_messages = b.section == "messages" and isinstance(b.path[1], int)
        out.append(
            PrefixBlock(
                h.hex(),
                b.tokens,
                b.section,
                b.path[1] if in_messages else None,
                b.role if in_messages else None,
                b.markable,
            )
        )
    return out
