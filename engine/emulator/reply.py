"""The deterministic reply: what the emulated model says, and how long it is.

- Text: ``echo: `` + the first 64 characters of the last user text, then filler
  words chosen by a hash of that text, up to a length (16..63 tokens) that is also
  derived from it. Same request, same reply.
- A forced ``tool_choice`` (``tool`` or ``any``): one ``tool_use`` whose input is a
  deterministic instance of the tool's ``input_schema``. With ``auto`` (the
  default) a tool is called when the last user text names it and the turn is not
  already a tool result; otherwise the reply is text.
- ``output_config.format`` json_schema: the text is a JSON instance of the schema.
- ``max_tokens`` cuts the text at ``max_tokens * 4`` bytes (``stop_reason:
  max_tokens``); a stop sequence found in the text ends it there.
- ``max_tokens: 0`` pre-warms: empty content, billed only for the cache write.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import zlib
from typing import Any

from engine.emulator.cache import CacheOutcome
from engine.emulator.schema_instance import instance
from engine.emulator.validate import Prepared
from engine.providers.anthropic.tokens import CHARS_PER_TOKEN, block_tokens, text_tokens

__all__ = ["ECHO_CHARS", "build_message", "last_user_text"]

ECHO_CHARS = 64
_MIN_TOKENS, _SPREAD = 16, 48
_WORDS = [
    "alpha",
    "bravo",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "gamma",
    "harbor",
    "iris",
    "juniper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
    "prism",
    "quartz",
    "river",
    "sable",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
]


def last_user_text(params: dict[str, Any]) -> str:
    """The text of the last user turn (text blocks, else text inside tool results)."""
    for message in reversed(params.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content if b.get("type") == "text"]
        if not texts:
            for b in content:
                if b.get("type") == "tool_result":
                    inner = b.get("content")
                    texts.append(inner if isinstance(inner, str) else _texts(inner))
        return " ".join(t for t in texts if t)
    return ""


def _texts(blocks: Any) -> str:
    return " ".join(
        b.get("text", "") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text"
    )


def _filler_text(prompt: str) -> str:
    seed = zlib.crc32(prompt.encode("utf-8"))
    target = _MIN_TOKENS + seed % _SPREAD
    text = "echo: " + prompt[:ECHO_CHARS]
    n = seed
    while len(text.encode("utf-8")) < target * CHARS_PER_TOKEN:
        text += " " + _WORDS[n % len(_WORDS)]
        n = (n * 1103515245 + 12345) & 0x7FFFFFFF
    return text


def _cut(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that fits ``max_tokens`` (whole characters)."""
    raw = text.encode("utf-8")[: max_tokens * CHARS_PER_TOKEN]
    return raw.decode("utf-8", errors="ignore")


def _tool_to_call(req: Prepared, prompt: str) -> dict[str, Any] | None:
    tools = [t for t in req.params.get("tools") or [] if isinstance(t.get("input_schema"), dict)]
    if req.forced_tool is not None:
        forced: dict[str, Any] = next(t for t in tools if t["name"] == req.forced_tool)
        return forced
    choice = (req.params.get("tool_choice") or {}).get("type", "auto")
    last = (req.params.get("messages") or [{}])[-1]
    content = last.get("content")
    after_tool = isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
    if choice != "auto" or after_tool:
        return None
    lowered = prompt.lower()
    return next((t for t in tools if t["name"].lower() in lowered), None)


def _content(req: Prepared) -> tuple[list[dict[str, Any]], str, str | None, int]:
    """(content, stop_reason, stop_sequence, output_tokens)."""
    if req.max_tokens == 0:
        return [], "max_tokens", None, 0
    prompt = last_user_text(req.params)
    tool = _tool_to_call(req, prompt)
    if tool is not None:
        block = {
            "type": "tool_use",
            "id": "toolu_" + hashlib.sha256(json.dumps(req.params["messages"][-1]).encode()).hexdigest()[:24],
            "name": tool["name"],
            "input": instance(tool["input_schema"], prompt),
        }
        used = block_tokens(block)
        if used > req.max_tokens:
            return [block], "max_tokens", None, req.max_tokens
        return [block], "tool_use", None, used
    if req.output_schema is not None:
        text = json.dumps(instance(req.output_schema, prompt), ensure_ascii=False)
    else:
        text = _filler_text(prompt)
    stop_reason, stop_sequence = "end_turn", None
    found = [
        (text.find(seq, 6), seq)
        for seq in req.params.get("stop_sequences") or []
        if isinstance(seq, str) and seq
    ]
    found = [(at, seq) for at, seq in found if at >= 0]
    if found:
        at, seq = min(found)
        text, stop_reason, stop_sequence = text[:at], "stop_sequence", seq
    if text_tokens(text) > req.max_tokens:
        text, stop_reason, stop_sequence = _cut(text, req.max_tokens), "max_tokens", None
    return [{"type": "text", "text": text}], stop_reason, stop_sequence, text_tokens(text)


def build_message(req: Prepared, cache: CacheOutcome, tier: str) -> dict[str, Any]:
    """The full ``Message`` object of a non-streaming reply (the stream is cut from it)."""
    content, stop_reason, stop_sequence, output_tokens = _content(req)
    prewarm = req.max_tokens == 0
    usage = {
        "input_tokens": 0 if prewarm else cache.input,
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": 0 if prewarm else cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_5m,
            "ephemeral_1h_input_tokens": cache.write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "batch" if tier == "batch" else "standard",
    }
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
