"""A finished ``Message`` replayed as the API's server-sent event sequence.

Order, as the API sends it: ``message_start`` (usage with the cache fields and
``output_tokens`` 1), per block ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``citations_delta``, ``input_json_delta``, ``thinking_delta`` then
``signature_delta``; server tool results whole in their start event) /
``content_block_stop``, one ``ping``
after the first block opens, ``message_delta`` (stop reason and the final usage,
input and cache fields included), ``message_stop``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["sse_events"]

_CHUNK = 24  # characters per delta: several deltas even for short replies


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _chunks(text: str) -> Iterator[str]:
    for start in range(0, len(text), _CHUNK):
        yield text[start : start + _CHUNK]


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _start(index: int, block: dict[str, Any]) -> bytes:
    return _event(
        "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
    )


def _block_events(index: int, block: dict[str, Any]) -> Iterator[bytes]:
    kind = block["type"]
    if kind in ("tool_use", "server_tool_use"):
        yield _start(index, {**block, "input": {}})
        for part in _chunks(json.dumps(block["input"], ensure_ascii=False)):
            yield _delta(index, {"type": "input_json_delta", "partial_json": part})
    elif kind == "thinking":
        yield _start(index, {"type": "thinking", "thinking": "", "signature": ""})
        for part in _chunks(block["thinking"]):
            yield _delta(index, {"type": "thinking_delta", "thinking": part})
        yield _delta(index, {"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        yield _start(index, {"type": "text", "text": ""})
        for citation in block.get("citations") or []:
            yield _delta(index, {"type": "citations_delta", "citation": citation})
        for part in _chunks(block.get("text", "")):
            yield _delta(index, {"type": "text_delta", "text": part})
    else:  # results of server tools arrive whole
        yield _start(index, block)
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})


def sse_events(message: dict[str, Any]) -> Iterator[bytes]:
    """Every event of ``message``'s stream, encoded for the wire."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield _event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(message["content"]):
        events = _block_events(index, block)
        yield next(events)
        if index == 0:
            yield _event("ping", {"type": "ping"})
        yield from events
    if not message["content"]:
        yield _event("ping", {"type": "ping"})
    final_usage = {
        k: usage[k]
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    closing: dict[str, Any] = {"type": "message_delta", "delta": delta, "usage": final_usage}
    if "context_management" in message:
        closing["context_management"] = message["context_management"]
    yield _event("message_delta", closing)
    yield _event("message_stop", {"type": "message_stop"})
