"""What the demo tells an SRE after a run: money and time, per call site, and proof.

Built from the two arms' results and the policy arm's decision log: input tokens by
how they were billed (uncached at full price, written to the cache, read from it),
per call site what was paid against what the same calls cost without the policy, the
wall time the batched calls waited, whether every answer came back unchanged, the
model and where its prices come from, and the commands to run next.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from engine.bench.harness import ArmResult
from engine.plan._report import read_log

__all__ = ["answers_line", "call_site_rows", "price_source", "totals_rows"]


def totals_rows(before: ArmResult, after: ArmResult) -> list[tuple[str, str, str]]:
    """(label, before, after) rows: input split by how it was billed, then cost."""
    rows = [("calls", f"{before.calls:,}", f"{after.calls:,}")]
    for label, attr in (
        ("uncached input tokens (full price)", "input_tokens"),
        ("cached input: written (1.25x or 2x)", "cache_write_tokens"),
        ("cached input: read (0.1x)", "cache_read_tokens"),
        ("output tokens", "output_tokens"),
    ):
        rows.append((label, f"{getattr(before, attr):,}", f"{getattr(after, attr):,}"))
    rows.append(("batch share (half price)", f"{before.batch_share:.0%}", f"{after.batch_share:.0%}"))
    rows.append(("dollars", f"${before.cost_usd:.4f}", f"${after.cost_usd:.4f}"))
    saved = 100.0 * (before.cost_usd - after.cost_usd) / before.cost_usd if before.cost_usd else 0.0
    rows.append(("savings", "", f"{saved:.1f}%"))
    return rows


def call_site_rows(log: Path) -> list[dict[str, Any]]:
    """Per call site from the policy arm's decision log: tokens by billing, cost, batch waits."""
    sites: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "uncached": 0, "written": 0, "read": 0, "paid": 0.0, "without": 0.0, "waits": []}
    )
    for record in read_log(log):
        row = sites[str(record["call_site"])]
        row["calls"] += 1
        usage, cost = record.get("usage") or {}, record.get("cost") or {}
        row["uncached"] += int(usage.get("input_tokens") or 0)
        row["written"] += int(usage.get("cache_creation_input_tokens") or 0)
        row["read"] += int(usage.get("cache_read_input_tokens") or 0)
        row["paid"] += float(cost.get("realized_usd") or 0.0)
        row["without"] += float(cost.get("counterfactual_usd") or 0.0)
        if record.get("batch_id") and record.get("latency_ms") is not None:
            row["waits"].append(float(record["latency_ms"]) / 1000.0)
    return [
        {"call_site": site, **row, "wait": _waits(row.pop("waits"))} for site, row in sorted(sites.items())
    ]


def _waits(waits: list[float]) -> str:
    if not waits:
        return "direct"
    return f"{len(waits)}: median {statistics.median(waits):.1f} s, max {max(waits):.1f} s"


def answers_line(before: ArmResult, after: ArmResult) -> str:
    """One line that says whether every call got the same answer with and without the policy."""
    pairs = [(a, b) for a, b in zip(before.answers, after.answers, strict=False) if a is not None]
    same = sum(1 for a, b in pairs if a == b)
    if pairs and same == len(pairs) == len(before.answers) == len(after.answers):
        return f"answers unchanged: all {same} calls returned the same answer with and without the policy"
    return f"answers CHANGED: {len(pairs) - same} of {len(pairs)} calls answered differently with the policy"


def price_source(model: str) -> str:
    from engine.providers.anthropic.capabilities import OVERRIDE_ENV, capabilities

    info = capabilities().model(model)
    p = info.prices
    override = os.environ.get(OVERRIDE_ENV)
    where = "engine/data/anthropic.yaml" + (f" overridden by {override}" if override else "")
    return (
        f"model {model}; prices per million tokens from {where}: input ${p.input:g}, "
        f"cache write ${p.cache_write_5m:g} (5m) / ${p.cache_write_1h:g} (1h), read ${p.cache_read:g}, "
        f"output ${p.output:g}; batch tier half of each"
    )
