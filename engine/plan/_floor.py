"""The floor on what any placement of cache markers and any batching pays for a trace.

Two proofs bound it from below (docs/savings.md): the per-call floor of
:mod:`._bound` (steps 1-6), which charges each call the least it could pay given
what the trace says it could read, and the hindsight floor of :mod:`._online`
(step 8), which follows each conversation call by call with every pause as the
trace has it. Each is a floor on its own; the larger one is the floor reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.plan import _bound
from engine.plan._online import hindsight_lower_bound
from engine.plan._trace import TraceRecord

__all__ = ["lower_bound"]


def lower_bound(records: Iterable[TraceRecord], *, batch_hit_rate: float = 1.0) -> float:
    """The floor in USD: the larger of the per-call floor and the hindsight floor.

    ``batch_hit_rate``: the chance a batch item reads an entry it finds (step 6);
    both floors take it.
    """
    ordered = sorted(records, key=lambda r: r.ts)
    return max(
        _bound.lower_bound(ordered, batch_hit_rate=batch_hit_rate),
        hindsight_lower_bound(ordered, batch_hit_rate=batch_hit_rate),
    )
