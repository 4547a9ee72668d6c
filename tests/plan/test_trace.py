"""Traces: built from requests or decision-log records, written and read back, no prompt text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine._resources import resource_path
from engine.ledger import DecisionRecord, MarkerRecord, PrefixBlock
from engine.plan import TraceError, read_trace, record_from_decision, record_from_payload, write_trace
from engine.providers.anthropic.blocks import iter_blocks, prefix_hashes

SECRET = "the quarterly revenue of ACME is 42"
PARAMS: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "tools": [{"name": "lookup", "description": "find", "input_schema": {"type": "object"}}],
    "system": [{"type": "text", "text": "rules " * 400, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "messages": [
        {"role": "user", "content": SECRET},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": "more"},
    ],
}


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resource_path(f"schemas/{name}").read_text(encoding="utf-8"))
    return loaded


def test_a_request_becomes_a_record_with_positions_and_caller_markers_only() -> None:
    record = record_from_payload(PARAMS, ts=5.0, call_site="chat.agent.complete", output_tokens=7)
    jsonschema.validate(record.to_dict(), _schema("trace.v1.json"))
    assert [b.section for b in record.blocks] == ["tools", "system", "messages", "messages", "messages"]
    assert [b.message for b in record.blocks] == [None, None, 0, 1, 2]
    assert [b.marker for b in record.blocks] == [None, "1h", None, None, None]
    assert record.input_tokens == sum(b.tokens for b in iter_blocks(PARAMS))
    assert SECRET not in json.dumps(record.to_dict())


def test_written_and_read_back_unchanged(tmp_path: Path) -> None:
    first = record_from_payload(PARAMS, ts=9.0, call_site="a", output_tokens=3, latency="awaitable")
    second = record_from_payload(PARAMS, ts=1.0, call_site="b", output_tokens=4)
    path = tmp_path / "t.jsonl"
    assert write_trace(path, [first, second]) == 2
    assert read_trace(path) == [second, first]  # sorted by time


def test_a_decision_log_record_is_a_trace_record() -> None:
    blocks = iter_blocks(PARAMS)
    hashes = prefix_hashes(PARAMS, blocks)
    entry = DecisionRecord(
        call_site="indexing.table_rows",
        call_site_source="metadata",
        call="ainvoke",
        latency_tolerance="awaitable",
        model="claude-sonnet-4-5",
        provider="anthropic",
        transport="direct",
        prefix=[PrefixBlock(h.hex(), b.tokens, b.section) for b, h in zip(blocks, hashes, strict=True)],
        markers=[
            MarkerRecord("system.0", "1h", 600, "caller", "kept", "set by the caller", hashes[1].hex()),
            MarkerRecord("messages.2.content.0", "5m", 900, "engine", "placed", "last", hashes[4].hex()),
        ],
        output_tokens=12,
        usage={"input_tokens": 10, "output_tokens": 12},
        cost={"realized_usd": 0.5, "counterfactual_usd": 0.6, "saved_usd": 0.1},
    ).to_dict()
    record = record_from_decision(entry)
    jsonschema.validate(record.to_dict(), _schema("trace.v1.json"))
    assert record.latency == "awaitable" and record.output_tokens == 12
    assert [b.tokens for b in record.blocks] == [b.tokens for b in blocks]
    assert [b.marker for b in record.blocks] == [
        None,
        "1h",
        None,
        None,
        None,
    ]  # the engine's own are not kept


def test_a_decision_log_file_reads_as_a_trace(tmp_path: Path) -> None:
    entry = DecisionRecord(
        call_site="s",
        call_site_source="code",
        call="invoke",
        latency_tolerance="interactive",
        model="claude-sonnet-4-5",
        provider="anthropic",
        transport="direct",
        prefix=[PrefixBlock("ab" * 32, 10, "messages")],
        output_tokens=1,
    ).to_dict()
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    (record,) = read_trace(path)
    assert record.call_site == "s" and record.blocks[0].hash == "ab" * 32


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "t.jsonl:2: not JSON"),
        (
            '{"schema": "llm-policy/trace/v1", "ts": 1, "call_site": "s", "model": "m", "output_tokens": -1, '
            '"blocks": []}',
            "t.jsonl:2: $['output_tokens']: -1 is less than the minimum of 0",
        ),
        ('{"hello": 1}', "t.jsonl:2: not a trace or decision-log record"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = record_from_payload(PARAMS, ts=1.0, call_site="a", output_tokens=1)
    path = tmp_path / "t.jsonl"
    write_trace(path, [good])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(TraceError) as err:
        read_trace(path)
    assert str(err.value).startswith(str(path.parent / message))
