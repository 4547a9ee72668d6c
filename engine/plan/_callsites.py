"""``callsites``: every call site a decision log has seen, with the facts a rule is written from.

Run the engine in shadow mode (or with rules that match nothing) and every call writes a
record; this folds them per call site: how many calls, which models, the typical prompt
length against the model's cache minimum, how much of each prompt an earlier call at
the same site already sent (prefix reuse: what caching could read), the latency the
callers tolerate (sync/stream calls wait on the answer, ``ainvoke`` may be pooled), and
the rule that matched. Records hold prefix hashes and token counts only, never text.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.plan._report import read_log
from engine.providers.anthropic.capabilities import capabilities

__all__ = ["callsites_report"]


@dataclass
class _Site:
    calls: int = 0
    models: Counter[str] = field(default_factory=Counter)
    roles: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    latency: Counter[str] = field(default_factory=Counter)
    bypassed: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    reused_tokens: list[int] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def _cumulative(prefix: Iterable[dict[str, Any]]) -> list[tuple[str, int]]:
    """(prefix hash, tokens up to and including that block) for each block of a request."""
    out, total = [], 0
    for block in prefix:
        total += int(block.get("tokens") or 0)
        out.append((str(block.get("hash")), total))
    return out


def _add(site: _Site, entry: dict[str, Any]) -> None:
    site.calls += 1
    site.models[str(entry.get("model"))] += 1
    site.roles[str(entry.get("role") or "-")] += 1
    site.rules[str(entry.get("rule") or "(none)")] += 1
    site.latency[str(entry.get("latency_tolerance"))] += 1
    site.bypassed += int(bool(entry.get("bypass")))
    blocks = _cumulative(entry.get("prefix") or [])
    if not blocks:
        return
    site.prompt_tokens.append(blocks[-1][1])
    reused = max((tokens for digest, tokens in blocks if digest in site.seen), default=0)
    site.reused_tokens.append(reused)
    site.seen.update(digest for digest, _ in blocks)


def _hint(site: _Site) -> str:
    waits = site.latency["interactive"]
    if site.bypassed:
        return "bypassed: the host calls this model past the engine"
    if waits == 0 and site.latency["awaitable"]:
        return "ainvoke only: a pooling (accumulate) candidate if its callers can wait"
    if waits == site.calls:
        return "callers wait on each answer (sync or streamed): never batch"
    return "mixed: batch only the awaitable calls"


def _share(tokens: list[int], minimum: int | None) -> float | None:
    """Percent of ``tokens`` at or above ``minimum``."""
    if not tokens or minimum is None:
        return None
    return round(100.0 * sum(t >= minimum for t in tokens) / len(tokens), 1)


def _finish(site: _Site) -> dict[str, Any]:
    model = site.models.most_common(1)[0][0]
    minimum = capabilities().model(model).min_cache_tokens if model != "None" else None
    typical = int(statistics.median(site.prompt_tokens)) if site.prompt_tokens else None
    reused = [t for t in site.reused_tokens if minimum is not None and t >= minimum]
    return {
        "calls": site.calls,
        "models": dict(site.models.most_common()),
        "roles": dict(site.roles.most_common()),
        "rules": dict(site.rules.most_common()),
        "latency_tolerance": dict(site.latency.most_common()),
        "prompt_tokens_median": typical,
        "cache_min_tokens": minimum,
        "above_cache_min_pct": _share(site.prompt_tokens, minimum),
        "reuse_pct": round(100.0 * len(reused) / len(site.reused_tokens), 1) if site.reused_tokens else None,
        "reused_tokens_median": int(statistics.median(reused)) if reused else 0,
        "bypassed": site.bypassed,
        "hint": _hint(site),
    }


def callsites_report(path: str | Path) -> dict[str, Any]:
    """``{"records", "call_sites": {site: {...}}}``, busiest call site first."""
    sites: dict[str, _Site] = {}
    records = 0
    for entry in read_log(path):
        records += 1
        _add(sites.setdefault(str(entry["call_site"]), _Site()), entry)
    ordered = sorted(sites.items(), key=lambda kv: (-kv[1].calls, kv[0]))
    return {"records": records, "call_sites": {name: _finish(site) for name, site in ordered}}
