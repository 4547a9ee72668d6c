"""``report``: realized savings per call site from a decision log.

Each decision-log record carries what the call cost (``cost.realized_usd``) and
what the same tokens would have cost without the policy
(``cost.counterfactual_usd``, both from the capabilities' prices), so the
realized saving is their difference, summed per call site.

Shadow-mode records (sent unchanged) also carry ``cost.policy_usd``: what the call
would have cost with the policy enforced. The report sums it next to what was
paid (``shadow_calls``, ``shadow_paid_usd``, ``shadow_policy_usd``,
``shadow_saving_pct``): the saving switching to ``enforce`` would bring.

Pooled calls (``accumulate``) carry the fill of the batch that took them and the wait
they paid in the pool: ``pool_fill_avg``, ``pool_wait_ms_avg`` and ``pool_wait_ms_max``
per call site, the latency a host's concurrency slots hold while the pool fills.
``bypassed`` counts records of calls the host sends past the engine.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LogError", "read_log", "savings_report"]


class LogError(ValueError):
    """A decision-log line that cannot be read; the message names ``file:line``."""


def _site_row() -> dict[str, Any]:
    return {
        "calls": 0,
        "errors": 0,
        "batch_calls": 0,
        "cache_hits": 0,
        "realized_usd": 0.0,
        "counterfactual_usd": 0.0,
        "saved_usd": 0.0,
        "shadow_calls": 0,
        "shadow_paid_usd": 0.0,
        "shadow_policy_usd": 0.0,
        "pooled_calls": 0,
        "pool_fill_sum": 0,
        "pool_wait_ms_sum": 0.0,
        "pool_wait_ms_max": 0.0,
        "bypassed": 0,
    }


def _add(row: dict[str, Any], entry: dict[str, Any]) -> None:
    row["calls"] += 1
    if entry.get("error"):
        row["errors"] += 1
    usage = entry.get("usage") or {}
    row["batch_calls"] += int(usage.get("service_tier") == "batch")
    row["cache_hits"] += int((usage.get("cache_read_input_tokens") or 0) > 0)
    cost = entry.get("cost") or {}
    for key in ("realized_usd", "counterfactual_usd", "saved_usd"):
        row[key] += float(cost.get(key) or 0.0)
    if entry.get("pool_fill") is not None:  # a pooled call: how full its batch was, what it waited
        row["pooled_calls"] += 1
        row["pool_fill_sum"] += int(entry["pool_fill"])
        wait = float(entry.get("pool_wait_ms") or 0.0)
        row["pool_wait_ms_sum"] += wait
        row["pool_wait_ms_max"] = max(row["pool_wait_ms_max"], wait)
    row["bypassed"] += int(bool(entry.get("bypass")))
    if "policy_usd" in cost:
        row["shadow_calls"] += 1
        row["shadow_paid_usd"] += float(cost.get("realized_usd") or 0.0)
        row["shadow_policy_usd"] += float(cost["policy_usd"])


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    base = row["counterfactual_usd"]
    out = {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
    out["saved_pct"] = round(100.0 * row["saved_usd"] / base, 2) if base else 0.0
    pooled = row["pooled_calls"]
    out["pool_fill_avg"] = round(row["pool_fill_sum"] / pooled, 2) if pooled else None
    out["pool_wait_ms_avg"] = round(row["pool_wait_ms_sum"] / pooled, 1) if pooled else None
    paid = row["shadow_paid_usd"]
    out["shadow_saving_pct"] = round(100.0 * (paid - row["shadow_policy_usd"]) / paid, 2) if paid else 0.0
    return out


def read_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON Lines decision log, in order; :class:`LogError` names a bad line."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LogError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(entry, dict) or "call_site" not in entry:
                raise LogError(f"{path}:{number}: not a decision-log record (no call_site)")
            yield entry


def savings_report(path: str | Path) -> dict[str, Any]:
    """``{"calls", "total": {...}, "call_sites": {site: {...}}}`` from a JSON Lines decision log."""
    sites: dict[str, dict[str, Any]] = defaultdict(_site_row)
    total = _site_row()
    for entry in read_log(path):
        _add(sites[str(entry["call_site"])], entry)
        _add(total, entry)
    return {
        "calls": total["calls"],
        "total": _finish(total),
        "call_sites": {site: _finish(row) for site, row in sorted(sites.items())},
    }
