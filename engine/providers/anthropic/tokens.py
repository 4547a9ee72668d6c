"""A deterministic token estimate for Anthropic request content.

The emulator bills with it and the engine decides with it, so a prefix the engine
thinks is long enough to cache is long enough on the emulator. Against the real
API it is an estimate that errs on the side of counting more (the real tokenizer
averages about 3.5-4 characters of English per token); ``exact`` mode in the
breakpoint allocator asks ``count_tokens`` instead.

The rules (also in docs/emulator.md):

- text: ``ceil(utf8_bytes / 4)``; empty text is 0.
- image: ``ceil(w * h / 750)`` after scaling the long edge down to 1568 px, read
  from the PNG/GIF/JPEG/WebP header; 1600 when the size cannot be read (a URL).
- document: text sources as text; a base64 PDF is 2000 per page (``/Type /Page``
  objects, at least one); any other source 2000.
- tool definition, tool_use, other structured blocks: the text rule applied to
  their canonical JSON (sorted keys, no spaces, ``cache_control`` left out).
- tool_result: its header (tool_use_id, is_error) as JSON, plus its content.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from typing import Any

import orjson

__all__ = ["block_tokens", "canonical_json", "image_tokens", "text_tokens"]

CHARS_PER_TOKEN = 4
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MAX_EDGE = 1568
IMAGE_UNKNOWN_TOKENS = 1600
PDF_TOKENS_PER_PAGE = 2000
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the form hashed and counted everywhere.

    It runs on every call (prefix hashes, request identity), so it uses orjson, about
    twenty times faster than the standard library here. What orjson refuses (keys that
    are not strings, integers past 64 bits) falls back to ``json``: still deterministic.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / CHARS_PER_TOKEN)


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return int(w & 0x3FFF), int(h & 0x3FFF)
        if chunk == b"VP8L":
            b = data[21:25]
            w = 1 + (((b[1] & 0x3F) << 8) | b[0])
            h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return w, h
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            i += 2 + length
    return None


def image_tokens(source: dict[str, Any]) -> int:
    """Tokens of an image block's ``source``: pixels / 750 after the API's downscale."""
    if source.get("type") != "base64":
        return IMAGE_UNKNOWN_TOKENS
    raw = str(source.get("data", ""))[:87384]  # enough base64 to reach any JPEG frame header
    try:
        head = base64.b64decode(raw[: len(raw) - len(raw) % 4], validate=False)
    except (binascii.Error, ValueError):
        return IMAGE_UNKNOWN_TOKENS
    size = _image_size(head)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return IMAGE_UNKNOWN_TOKENS
    w, h = size
    scale = min(1.0, IMAGE_MAX_EDGE / max(w, h))
    return max(1, math.ceil((w * scale) * (h * scale) / IMAGE_PIXELS_PER_TOKEN))


def _document_tokens(source: dict[str, Any]) -> int:
    kind = source.get("type")
    if kind == "text":
        return text_tokens(str(source.get("data", "")))
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return text_tokens(content)
        return sum(block_tokens(b) for b in content or [] if isinstance(b, dict))
    if kind == "base64":
        try:
            pdf = base64.b64decode(str(source.get("data", "")), validate=False)
        except (binascii.Error, ValueError):
            return PDF_TOKENS_PER_PAGE
        return PDF_TOKENS_PER_PAGE * max(1, len(_PDF_PAGE.findall(pdf)))
    return PDF_TOKENS_PER_PAGE


def _without_marker(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def block_tokens(block: dict[str, Any]) -> int:
    """Tokens of one content block or tool definition (nested tool_result content included)."""
    kind = block.get("type")
    if kind == "text":
        return text_tokens(str(block.get("text", "")))
    if kind == "image":
        return image_tokens(block.get("source") or {})
    if kind == "document":
        return _document_tokens(block.get("source") or {})
    if kind == "thinking":
        return text_tokens(str(block.get("thinking", "")))
    if kind == "redacted_thinking":
        return text_tokens(str(block.get("data", "")))
    if kind == "tool_result":
        header = {k: v for k, v in block.items() if k not in ("content", "cache_control")}
        content = block.get("content")
        if isinstance(content, list):
            body = sum(block_tokens(b) for b in content if isinstance(b, dict))
        else:
            body = text_tokens(str(content or ""))
        return text_tokens(canonical_json(header)) + body
    return text_tokens(canonical_json(_without_marker(block)))
