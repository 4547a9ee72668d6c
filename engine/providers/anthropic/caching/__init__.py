"""Prompt caching for Anthropic requests: the breakpoint allocator.

``BreakpointAllocator(caps, transport=...).apply(payload, plan, call_site=..., now=...)``
returns a :class:`CacheResult`: a new payload with ``cache_control`` markers where
they pay (the input is never mutated) and a :class:`Placement` per marker saying
what happened and why, for the decision log. The rules it honours (at most 4
markers, never a 1h after a 5m, never on a block that cannot carry one, the
caller's markers kept and counted) are in ``docs/strategies.md``.
"""

from engine.providers.anthropic.caching._allocator import BreakpointAllocator
from engine.providers.anthropic.caching._exact import prefix_payload, sdk_counter
from engine.providers.anthropic.caching._hits import BatchHitRates
from engine.providers.anthropic.caching._types import CacheResult, Placement

__all__ = [
    "BatchHitRates",
    "BreakpointAllocator",
    "CacheResult",
    "Placement",
    "prefix_payload",
    "sdk_counter",
]
