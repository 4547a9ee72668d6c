"""``recommend``: a policy proposed from a trace, one rule per call site, with its saving.

For each call site the candidates are: no caching; explicit breakpoints on the
stable prefix (``system``; ``tools`` + ``system``); the whole conversation
(``tools``, ``system``, ``history``, ``last``), each at a 5m and at a 1h TTL (the
conversation also at ``auto``: history 1h, newest turn 5m, see docs/strategies.md); and
batching (``accumulate``) wherever every recorded call of the site could wait for
a batch. Each candidate is replayed on the site's own calls with the emulator's
rules and the cheapest wins, so cache stays off where prefixes are below the
minimum or never reused (a write there only costs more), the TTL follows the
observed gaps, and batching goes where the latency tolerance allows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from engine.decision import Breakpoint, CachePlan, CacheTTL
from engine.plan._bound import tolerates_batch
from engine.plan._place import fixed_placer
from engine.plan._simulate import replay, summarize
from engine.plan._trace import TraceRecord

__all__ = ["Choice", "recommend"]

_ANCHOR_SETS: tuple[tuple[Breakpoint, ...], ...] = (
    ("system",),
    ("tools", "system"),
    ("tools", "system", "history", "last"),
)


@dataclass(frozen=True, slots=True)
class Choice:
    """The cheapest candidate for one call site."""

    call_site: str
    cache: CachePlan | None
    batch: bool
    cost_usd: float
    baseline_usd: float


def _candidates(batch: bool) -> list[tuple[CachePlan | None, bool]]:
    out: list[tuple[CachePlan | None, bool]] = [(None, batch)]
    for anchors in _ANCHOR_SETS:
        ttls: tuple[CacheTTL, ...] = ("5m", "1h", "auto") if "history" in anchors else ("5m", "1h")
        for ttl in ttls:
            out.append((CachePlan(mode="explicit", ttl=ttl, breakpoints=anchors), batch))
    return out


def _choose(site: str, records: Sequence[TraceRecord]) -> Choice:
    batch = all(tolerates_batch(r) for r in records)
    baseline = summarize(replay(records, fixed_placer(None, False))).cost_usd
    best: Choice | None = None
    for cache, batched in _candidates(batch):
        cost = summarize(replay(records, fixed_placer(cache, batched))).cost_usd
        if best is None or cost < best.cost_usd - 1e-12:
            best = Choice(site, cache, batched, cost, baseline)
    assert best is not None
    return best


def _rule_name(site: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-")[:56] or "site"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _rule(choice: Choice, taken: set[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": _rule_name(choice.call_site, taken),
        "match": {"callSite": choice.call_site},
    }
    if choice.cache is None:
        rule["cache"] = {"mode": "off"}
    else:
        rule["cache"] = {
            "mode": "explicit",
            "ttl": choice.cache.ttl,
            "breakpoints": list(choice.cache.breakpoints),
        }
    if choice.batch:
        rule["batch"] = {"mode": "accumulate"}
    return rule


def recommend(records: Sequence[TraceRecord], name: str = "recommended") -> tuple[str, list[Choice]]:
    """The proposed policy (YAML text) and the choice made for each call site."""
    by_site: dict[str, list[TraceRecord]] = defaultdict(list)
    for record in records:
        by_site[record.call_site].append(record)
    choices = [_choose(site, recs) for site, recs in sorted(by_site.items())]
    taken: set[str] = set()
    doc = {
        "apiVersion": "llm-policy/v1",
        "kind": "OptimizationPolicy",
        "metadata": {"name": name, "description": "Proposed by llm-policy recommend from a recorded trace"},
        "spec": {
            "enabled": True,
            "mode": "enforce",
            "defaults": {"cache": {"mode": "off"}, "batch": {"mode": "off"}},
            "rules": [_rule(c, taken) for c in choices],
        },
    }
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    return text, choices
