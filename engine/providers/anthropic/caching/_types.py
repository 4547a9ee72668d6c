"""What the allocator returns: the new payload and, per marker, what happened and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["TTL", "Action", "CacheResult", "Placement", "Source"]

TTL = Literal["5m", "1h"]
Source = Literal["caller", "engine"]
Action = Literal["placed", "kept", "downgraded", "dropped"]


@dataclass(frozen=True, slots=True)
class Placement:
    """One marker decision, for the decision log.

    ``path`` is dotted as the API writes it in errors (``messages.3.content.0``);
    ``prefix_tokens`` is the length of the prefix the marker ends (an estimate, or
    ``count_tokens``' answer in exact mode); ``prefix_hash`` is the hex hash the
    emulator and the reuse tracker key that prefix by.
    """

    path: str
    ttl: TTL
    prefix_tokens: int
    source: Source
    action: Action
    reason: str
    prefix_hash: str


@dataclass(frozen=True, slots=True)
class CacheResult:
    """The payload to send (a copy; the input is untouched) and the log of placements."""

    payload: dict[str, Any]
    placements: tuple[Placement, ...]
    notes: tuple[str, ...]

    @property
    def markers(self) -> int:
        """How many block markers the payload carries."""
        return sum(1 for p in self.placements if p.action in ("placed", "kept", "downgraded"))
