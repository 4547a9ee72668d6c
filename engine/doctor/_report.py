"""The doctor over a stream of records: each call against its call site's previous one."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from engine.doctor._diagnose import Miss, common_blocks, diagnose
from engine.ledger._record import DecisionRecord, MarkerRecord

__all__ = ["CacheDoctor", "cache_keys", "doctor_report"]

#: Call sites remembered by a running engine (a code location each: a few hundred at most).
MAX_SITES = 4096
#: Recent requests kept per call site, to find the one a request continues.
RECENT = 16
_KEPT = ("call_site", "model", "time", "latency_ms", "prefix", "markers", "cache_keys", "usage")


class CacheDoctor:
    """Remembers the last answered request of each call site (hashes and counts only)."""

    def __init__(self) -> None:
        self._last: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, record: dict[str, Any]) -> Miss | None:
        """The miss ``record`` shows against the closest earlier request of its call site.

        Several conversations run through one call site at once, so "previous" is the
        recent request sharing the longest prefix with this one (the newest on a tie).
        """
        if not record.get("usage") or record.get("error"):
            return None
        site = str(record["call_site"])
        with self._lock:
            recent = self._last.setdefault(site, deque(maxlen=RECENT))
            previous = max(reversed(recent), key=lambda r: common_blocks(record, r), default=None)
            recent.append({k: record.get(k) for k in _KEPT})
            self._last.move_to_end(site)
            while len(self._last) > MAX_SITES:
                self._last.popitem(last=False)
        return diagnose(record, previous)

    def observe_decision(self, record: DecisionRecord, api_reason: Any = None) -> dict[str, Any] | None:
        """:meth:`observe` for the engine's own record (the API's ``cache_miss_reason``, if it
        gave one, is passed on): the ``cache_miss`` the decision log writes."""
        if not record.usage:
            return None
        usage = {**record.usage, "cache_miss_reason": api_reason} if api_reason else record.usage
        data = {
            "call_site": record.call_site,
            "model": record.model,
            "time": record.time,
            "latency_ms": record.latency_ms,
            "batch_id": record.batch_id,
            "error": record.error,
            "usage": usage,
            "cache_keys": record.cache_keys,
            "prefix": [{"hash": b.hash, "tokens": b.tokens, "section": b.section} for b in record.prefix],
            "markers": [{s: getattr(m, s) for s in MarkerRecord.__slots__} for m in record.markers],
        }
        miss = self.observe(data)
        return None if miss is None else miss.to_dict()


def cache_keys(payload: dict[str, Any]) -> dict[str, str]:
    """Short hashes of ``tool_choice``, ``thinking`` and ``output_config.effort`` of a request."""
    from engine.providers.anthropic.tokens import canonical_json

    effort = (payload.get("output_config") or {}).get("effort")
    values = {
        "tool_choice": payload.get("tool_choice"),
        "thinking": payload.get("thinking"),
        "effort": effort,
    }
    return {k: hashlib.sha256(canonical_json(v).encode()).hexdigest()[:12] for k, v in values.items()}


def doctor_report(path: str | Path) -> dict[str, Any]:
    """Every miss in the log at ``path`` with its cause, and per call site the USD per cause.

    A cause the engine already wrote into a record (``cache_miss``) is taken as written;
    older logs are diagnosed here the same way.
    """
    doctor = CacheDoctor()
    misses: list[dict[str, Any]] = []
    sites: dict[str, dict[str, dict[str, float]]] = {}
    calls = 0
    from engine.plan._report import read_log

    for record in read_log(path):
        calls += 1
        found = doctor.observe(record)
        miss = record.get("cache_miss") or (found.to_dict() if found is not None else None)
        if miss is None:
            continue
        misses.append(
            {"id": record.get("id"), "call_site": record["call_site"], "time": record.get("time"), **miss}
        )
        row = sites.setdefault(record["call_site"], {}).setdefault(
            miss["cause"], {"calls": 0, "cost_usd": 0.0}
        )
        row["calls"] += 1
        row["cost_usd"] = round(row["cost_usd"] + float(miss["cost_usd"]), 8)
    return {"calls": calls, "misses": misses, "call_sites": sites}
