"""The deterministic reply: what the emulated model says, and how long it is.

- Text: ``echo: `` + the first 64 characters of the last user text, then filler
  words chosen by a hash of that text, up to a length (16..63 tokens) that is also
  derived from it. Same request, same reply.
- Thinking (enabled / adaptive): a signed ``thinking`` block first, within the
  budget; the documented trigger string gives ``redacted_thinking``.
- A forced ``tool_choice`` (``tool`` or ``any``): one ``tool_use`` (fresh id) whose
  input is a deterministic instance of the tool's ``input_schema``, built within
  ``max_tokens``; a forced web search / fetch answers the server tool's blocks. With
  ``auto`` (the default) a tool is called when the last user text names it and the
  turn is not already a tool result; otherwise the reply is text.
- ``output_config.format`` json_schema: the text is a JSON instance of the schema.
- ``max_tokens`` cuts the text at ``max_tokens * 4`` bytes (``stop_reason:
  max_tokens``); a stop sequence found in the text ends it there.
- ``max_tokens: 0`` pre-warms: empty content, billed only for the cache write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from typing import Any

from engine.emulator.cache import CacheOutcome
from engine.emulator.rules import thinking_budget
from engine.emulator.schema_instance import fits
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


#: Tool types the API runs itself (their calls come back as ``server_tool_use``).
_SERVER_TOOLS = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_")
#: Inputs of the Anthropic-defined client tools (no ``input_schema`` of their own).
_CLIENT_TOOL_INPUTS = {"bash_": {"command": "ls"}, "text_editor_": {"command": "view", "path": "/tmp"}}
_REDACT_TRIGGER = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _new_id(prefix: str) -> str:
    """A fresh id of the API's form (``toolu_01...``): never repeated across requests."""
    return prefix + "01" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


def _server_tool(tool: dict[str, Any]) -> bool:
    return str(tool.get("type", "custom")).startswith(_SERVER_TOOLS)


def _tool_to_call(req: Prepared, prompt: str) -> dict[str, Any] | None:
    tools = [t for t in req.params.get("tools") or [] if isinstance(t, dict)]
    if req.forced_tool is not None:
        return next((t for t in tools if t.get("name") == req.forced_tool), None)
    choice = (req.params.get("tool_choice") or {}).get("type", "auto")
    last = (req.params.get("messages") or [{}])[-1]
    content = last.get("content")
    after_tool = isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
    if choice != "auto" or after_tool:
        return None
    lowered = prompt.lower()
    named = [t for t in tools if isinstance(t.get("name"), str) and t["name"]]
    return next((t for t in named if t["name"].lower() in lowered), None)


def _tool_input(tool: dict[str, Any], prompt: str, budget: int) -> tuple[Any, bool]:
    """The call's input and whether it fit ``budget`` characters."""
    schema = tool.get("input_schema")
    if isinstance(schema, dict):
        return fits(schema, prompt, budget)
    kind = str(tool.get("type", ""))
    return next((dict(v) for k, v in _CLIENT_TOOL_INPUTS.items() if kind.startswith(k)), {}), True


def _server_blocks(tool: dict[str, Any], prompt: str) -> list[dict[str, Any]]:
    """A server tool's call and its result, in the shapes the API sends (web search / fetch)."""
    kind = str(tool.get("type", ""))
    call_id = _new_id("srvtoolu_")
    query = prompt[:ECHO_CHARS] or "query"
    if kind.startswith("web_fetch_"):
        url = "https://example.com/"
        call = {"type": "server_tool_use", "id": call_id, "name": tool["name"], "input": {"url": url}}
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": f"Example page about {query}"},
            "title": "Example",
        }
        fetched = {
            "type": "web_fetch_result",
            "url": url,
            "content": document,
            "retrieved_at": "2026-01-01T00:00:00Z",
        }
        return [call, {"type": "web_fetch_tool_result", "tool_use_id": call_id, "content": fetched}]
    if kind.startswith("web_search_"):
        call = {"type": "server_tool_use", "id": call_id, "name": tool["name"], "input": {"query": query}}
        hit = {
            "type": "web_search_result",
            "url": "https://example.com/",
            "title": f"Example result for {query}",
            "encrypted_content": base64.b64encode(query.encode()).decode() or "e30=",
            "page_age": None,
        }
        return [call, {"type": "web_search_tool_result", "tool_use_id": call_id, "content": [hit]}]
    return []


def _thinking(req: Prepared, prompt: str) -> tuple[dict[str, Any] | None, int]:
    """The thinking block of a reply that thinks, and the tokens it used."""
    if req.thinking is None or req.max_tokens == 0:
        return None, 0
    effort = (req.params.get("output_config") or {}).get("effort")
    if req.thinking == "adaptive" and effort == "low":
        return None, 0  # adaptive thinking may skip thinking on easy, low-effort turns
    budget = thinking_budget(req.params, req.max_tokens)
    if _REDACT_TRIGGER in prompt:  # the documented way to make the API redact its thinking
        data = base64.b64encode(hashlib.sha256(prompt.encode()).digest() * 4).decode()
        return {"type": "redacted_thinking", "data": data}, text_tokens(data)
    text = _cut("Thinking about: " + _filler_text(prompt), budget)
    tokens = text_tokens(text)
    shown = "" if (req.params.get("thinking") or {}).get("display") == "omitted" else text
    signature = base64.b64encode(hashlib.sha256(("sig:" + text).encode()).digest() * 2).decode()
    return {"type": "thinking", "thinking": shown, "signature": signature}, tokens


def _citations(req: Prepared, text: str) -> list[dict[str, Any]] | None:
    """A char_location citation of the first citable text document, when citations are on."""
    for message in reversed(req.params.get("messages") or []):
        content = message.get("content")
        for index, block in enumerate(content if isinstance(content, list) else []):
            enabled = (block.get("citations") or {}).get("enabled") if isinstance(block, dict) else None
            source = block.get("source") or {}
            if block.get("type") == "document" and enabled and source.get("type") == "text":
                cited = str(source.get("data", ""))[:ECHO_CHARS]
                return [
                    {
                        "type": "char_location",
                        "cited_text": cited,
                        "document_index": index,
                        "document_title": block.get("title"),
                        "start_char_index": 0,
                        "end_char_index": len(cited),
                    }
                ]
    return None


def _content(req: Prepared) -> tuple[list[dict[str, Any]], str, str | None, int]:
    """(content, stop_reason, stop_sequence, output_tokens)."""
    if req.max_tokens == 0:
        return [], "max_tokens", None, 0
    prompt = last_user_text(req.params)
    thought, used = _thinking(req, prompt)
    head = [thought] if thought is not None else []
    room = max(0, req.max_tokens - used)
    tool = _tool_to_call(req, prompt)
    if tool is not None and _server_tool(tool):
        head += _server_blocks(tool, prompt)
    elif tool is not None:
        tool_input, whole = _tool_input(tool, prompt, room * CHARS_PER_TOKEN)
        block = {"type": "tool_use", "id": _new_id("toolu_"), "name": tool["name"], "input": tool_input}
        spent = block_tokens(block)
        if not whole or spent > room:
            return [*head, block], "max_tokens", None, req.max_tokens
        return [*head, block], "tool_use", None, used + spent
    text, stop_reason, stop_sequence = _text(req, prompt, room)
    block = {"type": "text", "text": text}
    citations = _citations(req, text)
    if citations is not None:
        block["citations"] = citations
    return [*head, block], stop_reason, stop_sequence, used + text_tokens(text)


def _text(req: Prepared, prompt: str, room: int) -> tuple[str, str, str | None]:
    if req.output_schema is not None:
        value, _ = fits(req.output_schema, prompt, room * CHARS_PER_TOKEN + 1)
        text = json.dumps(value, ensure_ascii=False)
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
    if text_tokens(text) > room:
        text, stop_reason, stop_sequence = _cut(text, room), "max_tokens", None
    return text, stop_reason, stop_sequence


def build_message(req: Prepared, cache: CacheOutcome, tier: str) -> dict[str, Any]:
    """The full ``Message`` object of a non-streaming reply (the stream is cut from it)."""
    content, stop_reason, stop_sequence, output_tokens = _content(req)
    prewarm = req.max_tokens == 0
    usage: dict[str, Any] = {
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
    searches = sum(1 for b in content if b["type"] == "server_tool_use" and b["name"] == "web_search")
    fetches = sum(1 for b in content if b["type"] == "server_tool_use" and b["name"] == "web_fetch")
    if searches or fetches:
        usage["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": fetches}
    message = {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": req.response_model or req.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
    if req.params.get("context_management") is not None:
        message["context_management"] = {"applied_edits": []}  # nothing to clear at these sizes
    if req.params.get("container") is not None or _uses_container(req):
        message["container"] = {
            "id": "container_" + secrets.token_hex(12),
            "expires_at": "2099-01-01T00:00:00Z",
        }
    return message


def _uses_container(req: Prepared) -> bool:
    """Code execution and skills run in a container the response names."""
    return any(
        str(t.get("type", "")).startswith("code_execution_")
        for t in req.params.get("tools") or []
        if isinstance(t, dict)
    )
