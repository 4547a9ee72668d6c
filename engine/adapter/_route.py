"""Whether a call an ``accumulate`` rule would pool is cheaper sent direct (see
:mod:`engine.providers.anthropic.caching._route` for the arithmetic).

Decided only on evidence: the site's batches have reported at least
``MIN_OBSERVED`` reads or misses, its answers have shown their output size, the
call's tools and system prompt reach the model's cache minimum and were sent by
the site within the hour (a shared prefix a direct call will read). Every
``EXPLORE_EVERY``-th call still goes through a batch so the hit rate stays
measured. Anything unexpected keeps the rule's choice (batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.providers.anthropic.blocks import iter_blocks, prefix_hashes
from engine.providers.anthropic.caching._route import DIRECT_PAYS, route_costs
from engine.providers.anthropic.capabilities import capabilities

if TYPE_CHECKING:
    from engine.adapter._call import CallRun

__all__ = ["MIN_OBSERVED", "direct_pays"]

MIN_OBSERVED = 20


def direct_pays(run: CallRun, raw: dict[str, Any]) -> str | None:
    """Why ``raw`` should go direct instead of into a batch, or None to batch it."""
    try:
        return _verdict(run, raw)
    except Exception:
        return None


def _verdict(run: CallRun, raw: dict[str, Any]) -> str | None:
    plan = run.cache_plan
    if plan is None or plan.mode == "off":
        return None
    site = run.record.call_site
    hits = run.engine.batch_hits()
    output = hits.mean_output(site)
    if hits.observed(site) < MIN_OBSERVED or output is None:
        return None
    caps = capabilities()
    info = caps.model(str(raw.get("model", "")))
    blocks = iter_blocks(raw)
    head = sum(1 for b in blocks if b.section != "messages")
    shared = sum(b.tokens for b in blocks[:head])
    if head == 0 or shared < info.min_cache_tokens:
        return None
    digest = prefix_hashes(raw, blocks)[head - 1]
    if not run.engine.allocator(run.binding.transport).seen_before(site, digest, run.engine.clock()):
        return None
    if hits.explore(site):
        return None
    q = hits.rate(site)
    total = sum(b.tokens for b in blocks)
    costs = route_costs(total, shared, output, q, info.prices, caps.multipliers["batch"])
    if not costs.direct_pays:
        return None
    return (
        f"{DIRECT_PAYS}: the shared prefix ({shared} tokens) is read for certain "
        f"direct, while this site's batch items read it {q:.0%} of the time "
        f"(expected {costs.direct / 1e6:.6f} USD direct against {costs.batch / 1e6:.6f} in a batch)"
    )
