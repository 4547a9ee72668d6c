"""A request's content in cache-prefix order: the positions prompt caching works on.

The API caches prefixes ordered ``tools`` -> ``system`` -> ``messages``. Each
position here is one block that a ``cache_control`` marker could end a prefix at:
a tool definition, a system block, a message content block, or a block nested in
a ``tool_result`` (the nested blocks come first, then the ``tool_result`` itself,
whose prefix includes them all).

Both the emulator (to read and write its cache) and the breakpoint allocator (to
decide where markers pay) walk requests with :func:`iter_blocks` and hash prefixes
with :func:`prefix_hashes`, so they always agree on what a prefix is.

Settings that invalidate part of the cache without changing a block are mixed into
the chain where the docs say they take effect: ``speed`` and citation toggles at
the start of ``system``; ``tool_choice``, thinking settings and whether images are
present at the start of ``messages``. Changing a tool definition changes the
first positions, so it invalidates everything, as documented.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from engine.providers.anthropic.capabilities import capabilities
from engine.providers.anthropic.tokens import block_tokens, canonical_json, text_tokens

__all__ = ["Block", "Section", "iter_blocks", "prefix_hashes", "request_tokens"]

Section = Literal["tools", "system", "messages"]

#: Block types that may not carry ``cache_control``. Every other typed block may: text,
#: image, document, tool_use, tool_result, search_result and the server tools' blocks
#: (``server_tool_use``, ``web_search_tool_result``, ``web_fetch_tool_result``,
#: ``code_execution_tool_result``, ``mcp_tool_use``, ...), which a caller may mark.
UNMARKABLE_TYPES = frozenset({"thinking", "redacted_thinking"})


@dataclass(frozen=True, slots=True)
class Block:
    """One position of the cacheable prefix.

    ``path`` addresses the block in the payload, e.g. ``("messages", 3, "content", 1)``;
    ``string_form`` means the container is a plain string (``system="..."`` or
    ``content="..."``) that must become a one-block list before a marker fits.
    ``tokens`` counts this position alone; ``digest`` identifies its content (the
    marker itself left out) so equal content hashes equally in either form.
    """

    path: tuple[str | int, ...]
    section: Section
    role: str | None
    type: str
    tokens: int
    markable: bool
    cache_control: dict[str, Any] | None
    digest: bytes
    string_form: bool = False
    stripped: bool = False  # earlier turns' thinking: not in the prompt, so 0 tokens and no hash

    @property
    def dotted(self) -> str:
        """The path as the API writes it in errors: ``messages.0.content.11.content.0``."""
        return ".".join(str(p) for p in self.path)


def _digest(value: Any) -> bytes:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).digest()


#: The keys of a text block whose position depends on its text alone.
_PLAIN_TEXT_KEYS = frozenset({"type", "text", "cache_control"})


@lru_cache(maxsize=2048)
def _text_position(role: str | None, text: str) -> tuple[bytes, int]:
    """Digest and tokens of a plain text position, remembered by content.

    The same system prompt and shared instructions arrive on every call (often as the
    very same string object, whose hash Python keeps), so this makes them nearly free.
    A text block written as a string or as ``{"type": "text", "text": ...}`` digests
    the same, as the API treats both alike.
    """
    return _digest({"role": role, "block": {"type": "text", "text": text}}), text_tokens(text)


def _strip(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _markable(block: dict[str, Any]) -> bool:
    kind = block.get("type", "")
    if kind == "text" and not block.get("text"):
        return False
    return bool(kind) and isinstance(kind, str) and kind not in UNMARKABLE_TYPES


def _content_blocks(
    path: tuple[str | int, ...], section: Section, role: str | None, content: Any
) -> Iterator[Block]:
    if isinstance(content, str):
        digest, tokens = _text_position(role, content)
        yield Block(
            path=(*path, 0),
            section=section,
            role=role,
            type="text",
            tokens=tokens,
            markable=bool(content),
            cache_control=None,
            digest=digest,
            string_form=True,
        )
        return
    for i, block in enumerate(content or []):
        if not isinstance(block, dict):
            continue
        yield from _one_block((*path, i), section, role, block)


def _one_block(
    path: tuple[str | int, ...], section: Section, role: str | None, block: dict[str, Any]
) -> Iterator[Block]:
    marker = block.get("cache_control")
    marker = marker if isinstance(marker, dict) else None
    if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        header = {k: v for k, v in block.items() if k not in ("content", "cache_control")}
        header_tokens = text_tokens(canonical_json(header))
        nested = [b for b in block["content"] if isinstance(b, dict)]
        for j, inner in enumerate(block["content"]):
            if not isinstance(inner, dict):
                continue
            first = inner is nested[0]
            inner_marker = inner.get("cache_control")
            yield Block(
                path=(*path, "content", j),
                section=section,
                role=role,
                type=str(inner.get("type", "")),
                tokens=block_tokens(inner) + (header_tokens if first else 0),
                markable=_markable(inner),
                cache_control=inner_marker if isinstance(inner_marker, dict) else None,
                digest=_digest({"role": role, "header": header if first else None, "block": _strip(inner)}),
            )
        yield Block(
            path=path,
            section=section,
            role=role,
            type="tool_result",
            tokens=0 if nested else header_tokens,
            markable=True,
            cache_control=marker,
            digest=_digest({"role": role, "end": header}),
        )
        return
    text = block.get("text")
    if block.get("type") == "text" and isinstance(text, str) and _PLAIN_TEXT_KEYS.issuperset(block):
        digest, tokens = _text_position(role, text)
    else:
        digest, tokens = _digest({"role": role, "block": _strip(block)}), block_tokens(block)
    yield Block(
        path=path,
        section=section,
        role=role,
        type=str(block.get("type", "")),
        tokens=tokens,
        markable=_markable(block),
        cache_control=marker,
        digest=digest,
    )


def iter_blocks(params: dict[str, Any]) -> list[Block]:
    """Every cacheable position of ``params`` (a ``messages.create`` body) in prefix order."""
    out: list[Block] = []
    for i, tool in enumerate(params.get("tools") or []):
        if isinstance(tool, dict):
            marker = tool.get("cache_control")
            out.append(
                Block(
                    path=("tools", i),
                    section="tools",
                    role=None,
                    type="tool",
                    tokens=block_tokens({**_strip(tool), "type": tool.get("type", "custom")}),
                    markable=True,
                    cache_control=marker if isinstance(marker, dict) else None,
                    digest=_digest({"tool": _strip(tool)}),
                )
            )
    system = params.get("system")
    if system:
        out.extend(_content_blocks(("system",), "system", None, system))
    messages = params.get("messages") or []
    turn = _current_turn(messages) if _strips_thinking(params) else 0
    for m, message in enumerate(messages):
        if isinstance(message, dict):
            blocks = _content_blocks(
                ("messages", m, "content"), "messages", message.get("role"), message.get("content")
            )
            if m < turn and message.get("role") == "assistant":
                blocks = (
                    dataclasses.replace(b, tokens=0, stripped=True) if b.type in UNMARKABLE_TYPES else b
                    for b in blocks
                )
            out.extend(blocks)
    return out


def _strips_thinking(params: dict[str, Any]) -> bool:
    """Whether earlier turns' thinking leaves the prompt (most models; ANTHROPIC.md, "Later facts")."""
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return True
    return not capabilities().model(model).api.keeps_thinking


def _current_turn(messages: list[Any]) -> int:
    """Index of the user message that opened the current turn (not a mere tool result).

    Thinking in assistant messages before it belongs to previous turns: the API drops it
    from the prompt, so it is neither counted nor part of the cached prefix. Thinking
    inside the current turn's tool-use loop stays.
    """
    for m in range(len(messages) - 1, -1, -1):
        message = messages[m]
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        results_only = (
            isinstance(content, list)
            and bool(content)
            and all(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
        )
        if not results_only:
            return m
    return 0


def request_tokens(params: dict[str, Any]) -> int:
    """Total input tokens of a request, cache aside (what ``count_tokens`` answers)."""
    return sum(b.tokens for b in iter_blocks(params))


def _system_salt(params: dict[str, Any]) -> dict[str, Any]:
    citations = any(
        isinstance(b, dict) and (b.get("citations") or {}).get("enabled")
        for msg in params.get("messages") or []
        if isinstance(msg, dict) and isinstance(msg.get("content"), list)
        for b in msg["content"]
    )
    return {"speed": params.get("speed"), "citations": citations}


def _messages_salt(params: dict[str, Any], has_images: bool) -> dict[str, Any]:
    config = params.get("output_config")
    return {
        "tool_choice": params.get("tool_choice"),
        "thinking": params.get("thinking"),
        "effort": config.get("effort") if isinstance(config, dict) else None,  # invalidates like thinking
        "images": has_images,
    }


def _model_key(model: Any) -> str:
    """What the cache is keyed by: the family, so an alias and its dated id share entries."""
    info = capabilities().model(str(model)) if isinstance(model, str) and model else None
    return info.family if info is not None and info.known else str(model or "")


def prefix_hashes(params: dict[str, Any], blocks: list[Block] | None = None) -> list[bytes]:
    """``hashes[i]`` identifies the prefix that ends with ``blocks[i]`` (model included).

    Two requests share ``hashes[i]`` exactly when a cache entry written at position
    ``i`` by one may be read by the other (same model, same content up to there,
    same invalidating settings).
    """
    blocks = iter_blocks(params) if blocks is None else blocks
    h = hashlib.sha256(("model:" + _model_key(params.get("model"))).encode("utf-8"))
    hashes: list[bytes] = []
    section: str = "tools"
    has_images = any(b.type == "image" for b in blocks)
    for block in blocks:
        if block.section != section:
            if section == "tools":
                h.update(_digest(_system_salt(params)))
                section = "system"
            if block.section == "messages" and section == "system":
                h.update(_digest(_messages_salt(params, has_images)))
            section = block.section
        if not block.stripped:
            h.update(block.digest)
        hashes.append(h.copy().digest())
    return hashes
