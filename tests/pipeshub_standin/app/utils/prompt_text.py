"""Prompt text and images of PipesHub's sizes for the stand-in (not a PipesHub module).

``instructions(topic, tokens)`` is deterministic text of about ``tokens`` tokens under the
engine's estimate (4 bytes a token); ``data_uri()`` a small valid PNG as a data URI.
"""

from __future__ import annotations

import base64
import struct
import zlib

_WORDS = (
    "Read the content carefully and answer only from it. Keep names, numbers and dates exactly as "
    "written. When a field does not apply, leave it empty rather than guessing. Prefer the wording "
    "of the source over paraphrase, and never invent departments, categories or people. "
)


def instructions(topic: str, tokens: int) -> str:
    head = f"You are {topic}. "
    body = (_WORDS * (tokens * 4 // len(_WORDS) + 1))[: max(0, tokens * 4 - len(head))]
    return head + body


def png_base64(width: int = 64, height: int = 48, shade: int = 0x80) -> str:
    raw = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(data).decode("ascii")


def data_uri(shade: int = 0x80) -> str:
    return f"data:image/png;base64,{png_base64(shade=shade)}"


def image_url(shade: int = 0x80) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": data_uri(shade)}}
