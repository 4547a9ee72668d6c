"""What the engine decides for one call: the value ``evaluate`` returns.

Everything here is a frozen dataclass with no behaviour that touches the world, so
a decision can be cached, compared, logged and replayed. The strategies
(caching, batching) and the adapter read these; only the policy compiler builds them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BatchPlan",
    "Breakpoint",
    "CacheMode",
    "CachePlan",
    "CallContext",
    "Decision",
    "Strategy",
    "TraceStep",
    "in_rollout",
    "parse_duration",
]

Strategy = Literal["direct", "cache", "batch", "batch+cache"]
CacheMode = Literal["off", "auto", "explicit"]
CacheTTL = Literal["5m", "1h", "auto"]
Breakpoint = Literal["tools", "system", "history", "last"]
BatchMode = Literal["off", "explicit", "accumulate"]
OnFailure = Literal["direct", "error"]
PolicyMode = Literal["enforce", "shadow"]
OnUnsupported = Literal["ignore", "warn", "error"]

_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> int:
    """``"30s"`` -> 30, ``"5m"`` -> 300, ``"24h"`` -> 86400. Raises ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (write a whole number and s, m or h, e.g. '30s')")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the input of ``evaluate``. Only ``call_site`` is required."""

    call_site: str
    role: str | None = None
    provider: str | None = None
    model: str | None = None
    org: str | None = None


@dataclass(frozen=True, slots=True)
class CachePlan:
    mode: CacheMode
    ttl: CacheTTL = "5m"
    breakpoints: tuple[Breakpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """Batch settings; durations kept as written (``max_wait``) and in seconds (``max_wait_s``)."""

    mode: BatchMode
    max_requests: int = 100
    max_wait: str = "30s"
    deadline: str = "24h"
    retries: int = 3
    on_failure: OnFailure = "direct"

    @property
    def max_wait_s(self) -> int:
        return parse_duration(self.max_wait)

    @property
    def deadline_s(self) -> int:
        return parse_duration(self.deadline)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One line of the rule trace: a rule tried, whether it matched, and why (not)."""

    rule: str
    matched: bool
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one call.

    ``cache`` / ``batch`` are None when that strategy is off; ``strategy`` names what
    is on. ``rule`` is None when no rule matched (defaults apply) or the policy is
    disabled. ``mode``, ``rollout`` and ``on_unsupported`` are the policy's, carried
    so the adapter needs nothing else to act.
    """

    strategy: Strategy
    rule: str | None
    cache: CachePlan | None
    batch: BatchPlan | None
    policy_name: str
    revision: str
    version: int | None = None
    enabled: bool = True
    mode: PolicyMode = "enforce"
    rollout: int = 100
    on_unsupported: OnUnsupported = "warn"
    trace: tuple[TraceStep, ...] = field(default_factory=tuple)


def in_rollout(rollout: int, request_key: str) -> bool:
    """Whether a request falls in the first ``rollout`` percent, by a stable hash of its key.

    The same key always lands in the same bucket, so a retried or redelivered request
    is treated the same way each time.
    """
    if rollout >= 100:
        return True
    if rollout <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(request_key.encode("utf-8")).digest()[:8], "big") % 10000
    return bucket < rollout * 100
