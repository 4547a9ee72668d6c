"""A replayable trace: recorded calls as prefix hashes and token counts, no prompt text.

One JSON object per line (``schemas/trace.v1.json`` validates each). A record says
when a call happened, who made it (call site, role, model), what its cacheable
prefix looked like (one entry per position: the hash of the prefix ending there,
its own token count, its section and, when known, the message it belongs to and
any marker the caller set itself), how much output it produced and how long its
caller could wait. That is all a cache and price simulation needs, and nothing
that could leak a document.

Traces come from three places: :func:`record_from_payload` (a request body, e.g.
a benchmark workload), :func:`record_from_decision` (a decision-log line) and
files (:func:`read_trace`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from engine.providers.anthropic.blocks import iter_blocks, prefix_hashes
from engine.providers.anthropic.caching._route import DIRECT_PAYS

__all__ = [
    "SCHEMA_ID",
    "Latency",
    "TraceBlock",
    "TraceError",
    "TraceRecord",
    "billed",
    "read_trace",
    "record_from_decision",
    "record_from_payload",
    "write_trace",
]

SCHEMA_ID = "llm-policy/trace/v1"
Latency = Literal["interactive", "awaitable", "batch"]
TTL = Literal["5m", "1h"]
_HASH_BYTES = 16


class TraceError(ValueError):
    """A trace line that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class TraceBlock:
    """One cacheable position of a recorded request."""

    hash: str
    tokens: int
    section: str
    role: str | None = None
    message: int | None = None
    markable: bool = True
    marker: TTL | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hash": self.hash, "tokens": self.tokens, "section": self.section}
        if self.role is not None:
            out["role"] = self.role
        if self.message is not None:
            out["message"] = self.message
        if not self.markable:
            out["markable"] = False
        if self.marker is not None:
            out["marker"] = self.marker
        return out


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One recorded call. ``ts`` is in seconds (only differences matter)."""

    ts: float
    call_site: str
    model: str
    blocks: tuple[TraceBlock, ...]
    output_tokens: int
    latency: Latency = "interactive"
    call: str = "ainvoke"
    role: str | None = None
    provider: str = "anthropic"
    transport: str = "direct"
    tenant: str = "default"
    top_level_cache: TTL | None = None
    recorded: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def input_tokens(self) -> int:
        return sum(b.tokens for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "ts": round(self.ts, 3),
            "call_site": self.call_site,
            "model": self.model,
            "provider": self.provider,
            "transport": self.transport,
            "call": self.call,
            "latency": self.latency,
            "tenant": self.tenant,
            "output_tokens": self.output_tokens,
            "blocks": [b.to_dict() for b in self.blocks],
        }
        if self.role is not None:
            out["role"] = self.role
        if self.top_level_cache is not None:
            out["top_level_cache"] = self.top_level_cache
        if self.recorded is not None:
            out["recorded"] = self.recorded
        return out


def _ttl(marker: dict[str, Any] | None) -> TTL | None:
    if marker is None:
        return None
    return "1h" if marker.get("ttl") == "1h" else "5m"


def record_from_payload(
    payload: dict[str, Any],
    *,
    ts: float,
    call_site: str,
    output_tokens: int,
    latency: Latency = "interactive",
    call: str = "ainvoke",
    role: str | None = None,
    tenant: str = "default",
) -> TraceRecord:
    """The trace record of a ``messages.create`` body (its own markers kept as the caller's)."""
    blocks = iter_blocks(payload)
    hashes = prefix_hashes(payload, blocks)
    top = payload.get("cache_control")
    return TraceRecord(
        ts=ts,
        call_site=call_site,
        model=str(payload.get("model", "")),
        blocks=tuple(
            TraceBlock(
                hash=h[:_HASH_BYTES].hex(),
                tokens=b.tokens,
                section=b.section,
                role=b.role,
                message=b.path[1] if b.section == "messages" and isinstance(b.path[1], int) else None,
                markable=b.markable,
                marker=_ttl(b.cache_control),
            )
            for b, h in zip(blocks, hashes, strict=True)
        ),
        output_tokens=output_tokens,
        latency=latency,
        call=call,
        role=role,
        tenant=tenant,
        top_level_cache=_ttl(top) if isinstance(top, dict) else None,
    )


def _seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def record_from_decision(entry: dict[str, Any]) -> TraceRecord:
    """A decision-log record (schemas/decision-log.v1.json) as a trace record.

    The markers the engine placed are not carried over (a replay places its own);
    markers whose ``source`` is the caller are, since every policy keeps them.
    """
    caller = {
        m["prefix_hash"]: ("1h" if m.get("ttl") == "1h" else "5m")
        for m in entry.get("markers") or []
        if m.get("source") in ("caller", "prewarm") and m.get("prefix_hash")
    }
    usage = entry.get("usage") or {}
    blocks = tuple(
        TraceBlock(
            hash=str(p["hash"]),
            tokens=int(p["tokens"]),
            section=str(p.get("section", "messages")),
            role=p.get("role"),
            message=p.get("message"),
            markable=bool(p.get("markable", True)),
            marker=caller.get(str(p["hash"])),  # type: ignore[arg-type]
        )
        for p in entry.get("prefix") or []
    )
    output = entry.get("output_tokens")
    return TraceRecord(
        ts=_seconds(entry["time"]),
        call_site=str(entry["call_site"]),
        model=str(entry["model"]),
        blocks=blocks,
        output_tokens=int(output if output is not None else usage.get("output_tokens") or 0),
        latency=entry.get("latency_tolerance", "interactive"),
        call=str(entry.get("call", "ainvoke")),
        role=entry.get("role"),
        provider=str(entry.get("provider", "anthropic")),
        transport=str(entry.get("transport", "direct")),
        recorded=_recorded(entry, usage),
    )


def _recorded(entry: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any] | None:
    """What the log says happened: usage, cost and, for a batch item, its batch, answer time and,
    when it carried a marker, whether it read. ``billed`` is False for a call answered
    without a request (logged with a cost of 0 and no usage)."""
    if not usage:
        cost = entry.get("cost")
        # a cost and no usage: answered without a request (a redelivery the journal answered)
        return {"usage": {}, "cost": cost, "billed": False} if cost is not None else None
    out: dict[str, Any] = {"usage": usage, "cost": entry.get("cost")}
    if any(str(r).startswith(DIRECT_PAYS) for r in entry.get("reasons") or ()):
        out["sent_direct"] = True  # poolable, but cheaper direct at the site's batch hit rate
    if entry.get("batch_id"):
        out["batch_id"] = entry["batch_id"]
        if entry.get("latency_ms") is not None:
            out["answered_ts"] = _seconds(entry["time"]) + float(entry["latency_ms"]) / 1000.0
        if any(m.get("action") != "dropped" for m in entry.get("markers") or []):
            # the item carried a marker: whether it read is its draw under the batch hit model
            # (the same observation the engine learns its per-site rate from)
            out["reads"] = int(usage.get("cache_read_input_tokens") or 0) > 0
    return out


def billed(record: TraceRecord) -> bool:
    """Whether the call reached the API (False: answered from the journal, nothing sent)."""
    return (record.recorded or {}).get("billed") is not False


def _record(data: dict[str, Any]) -> TraceRecord:
    if data.get("schema") != SCHEMA_ID and "prefix" in data:
        return record_from_decision(data)
    return TraceRecord(
        ts=float(data["ts"]),
        call_site=str(data["call_site"]),
        model=str(data["model"]),
        blocks=tuple(TraceBlock(**b) for b in data["blocks"]),
        output_tokens=int(data["output_tokens"]),
        latency=data.get("latency", "interactive"),
        call=str(data.get("call", "ainvoke")),
        role=data.get("role"),
        provider=str(data.get("provider", "anthropic")),
        transport=str(data.get("transport", "direct")),
        tenant=str(data.get("tenant", "default")),
        top_level_cache=data.get("top_level_cache"),
        recorded=data.get("recorded"),
    )


def _validator() -> Any:
    import jsonschema

    from engine._resources import resource_path

    schema = json.loads(resource_path("schemas/trace.v1.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def read_trace(path: str | Path) -> list[TraceRecord]:
    """Every record of a JSON Lines trace (or decision log), sorted by time.

    Raises :class:`TraceError` naming ``file:line`` and the first problem found.
    """
    validator = _validator()
    out: list[TraceRecord] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if isinstance(data, dict) and data.get("schema") == SCHEMA_ID:
                error = next(iter(validator.iter_errors(data)), None)
                if error is not None:
                    where = "$" + "".join(f"[{p!r}]" for p in error.absolute_path)
                    raise TraceError(f"{path}:{number}: {where}: {error.message}")
            try:
                out.append(_record(data))
            except (KeyError, TypeError, ValueError) as exc:
                raise TraceError(f"{path}:{number}: not a trace or decision-log record ({exc})") from None
    out.sort(key=lambda r: r.ts)
    return out


def iter_lines(records: Iterable[TraceRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record.to_dict(), separators=(",", ":")) + "\n"


def write_trace(path: str | Path, records: Iterable[TraceRecord]) -> int:
    """Write ``records`` as JSON Lines; returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for line in iter_lines(records):
            fh.write(line)
            n += 1
    return n
