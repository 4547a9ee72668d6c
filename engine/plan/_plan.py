"""``plan``: what a policy would have cost on recorded traffic, per call site and in total.

The trace is replayed three ways with the same cache and price rules the emulator
bills by: as sent before any policy (only the caller's own markers), under the
policy, and against the provable floor (:func:`~engine.plan._bound.lower_bound`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.plan._bound import floor_shares
from engine.plan._place import caller_placer, policy_placer
from engine.plan._simulate import (
    DEFAULT_BATCH_HIT_RATE,
    Placer,
    Totals,
    observed_batch_hit_rate,
    replay,
    summarize,
)
from engine.plan._trace import TraceRecord, billed

__all__ = ["PlanResult", "plan_policy", "plan_with", "recorded_cost"]


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The replay under a policy next to the baseline, the recorded cost and the floor."""

    policy: str
    calls: int
    predicted: Totals
    baseline: Totals
    recorded_usd: float | None
    lower_bound_usd: float
    sites_lower_bound: dict[str, float]

    @property
    def saving_pct(self) -> float:
        base = self.baseline.cost_usd
        return 100.0 * (base - self.predicted.cost_usd) / base if base else 0.0

    def as_dict(self) -> dict[str, Any]:
        sites = {
            site: {
                **totals.as_dict(),
                "baseline_usd": round(self.baseline.by_site[site].cost_usd, 6),
                "lower_bound_usd": round(self.sites_lower_bound.get(site, 0.0), 6),
            }
            for site, totals in sorted(self.predicted.by_site.items())
        }
        return {
            "policy": self.policy,
            "calls": self.calls,
            "total": self.predicted.as_dict(),
            "baseline_usd": round(self.baseline.cost_usd, 6),
            "recorded_usd": None if self.recorded_usd is None else round(self.recorded_usd, 6),
            "lower_bound_usd": round(self.lower_bound_usd, 6),
            "saving_pct": round(self.saving_pct, 2),
            "call_sites": sites,
        }


def recorded_cost(records: Sequence[TraceRecord]) -> float | None:
    """The sum of what the records say they cost, if every record says so."""
    total = 0.0
    for record in records:
        cost = (record.recorded or {}).get("cost") or {}
        if "realized_usd" not in cost:
            return None
        total += float(cost["realized_usd"])
    return total


def plan_with(
    records: Sequence[TraceRecord], placer: Placer, name: str, *, batch_hit_rate: float | None = None
) -> PlanResult:
    """Replay ``records`` under ``placer`` (named ``name`` in the result).

    ``batch_hit_rate``: the chance a batch item reads an entry available to it; by
    default what the records themselves show (a decision log's batch items), else
    the middle of the documented 30%-98%.
    """
    rate = batch_rate(records, batch_hit_rate)
    predicted = summarize(replay(records, placer, batch_hit_rate=rate))
    baseline = summarize(replay(records, caller_placer, batch_hit_rate=rate))
    # Call sites may share prefixes (an agent's complete and stream calls share the
    # conversation), so the floor is computed once and split by where reads happen.
    per_site = floor_shares([r for r in records if billed(r)])
    return PlanResult(
        policy=name,
        calls=len(records),
        predicted=predicted,
        baseline=baseline,
        recorded_usd=recorded_cost(records),
        lower_bound_usd=sum(per_site.values()),
        sites_lower_bound=per_site,
    )


def batch_rate(records: Sequence[TraceRecord], given: float | None) -> float:
    """The batch hit rate a replay uses: ``given``, else the records' own, else the default."""
    if given is not None:
        return given
    observed = observed_batch_hit_rate(records)
    return DEFAULT_BATCH_HIT_RATE if observed is None else observed


def plan_policy(
    records: Sequence[TraceRecord], policy_path: str, *, batch_hit_rate: float | None = None
) -> PlanResult:
    """Replay ``records`` under the policy file at ``policy_path``."""
    from engine.compile import compile_policy
    from engine.policy import load_policy

    policy = load_policy(policy_path)
    compiled = compile_policy(policy)
    if batch_hit_rate is None:
        batch_hit_rate = learned_batch_hit_rate(records, lambda: policy_placer(compiled, batch_hit_rate=1.0))
    rate = batch_rate(records, batch_hit_rate)
    # the placer learns each site's rate from the replay's batch items, from the engine's prior
    return plan_with(records, policy_placer(compiled), policy.metadata.name, batch_hit_rate=rate)


def learned_batch_hit_rate(records: Sequence[TraceRecord], placer: Callable[[], Placer]) -> float | None:
    """The hit rate of the recorded batch items that carried a marker and had an entry to read.

    A replay with every marker placed and every read granted finds the batch items that
    could have read (an entry written before their wave); their recorded usage says
    which did. Items with nothing to read (a cold batch's first wave), and items the
    engine sent without a marker, say nothing about the hit model.
    """
    could = did = 0
    for call in replay(records, placer(), batch_hit_rate=1.0, draws=False):
        reads = (call.record.recorded or {}).get("reads")
        if reads is not None and call.usage.cache_read_tokens > 0:
            could += 1
            did += int(bool(reads))
    return did / could if could else None
