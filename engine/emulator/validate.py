"""Checking a ``messages.create`` body the way the API does, and resolving its markers.

The result, :class:`Prepared`, carries everything later steps need (blocks, prefix
hashes, cumulative token counts, the marker positions and TTLs), computed once so
a request is walked a single time. Messages of the 400s follow the API's
``path: problem`` form; the cache texts are the documented ones verbatim.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.emulator import rules
from engine.emulator.errors import invalid_request, not_found
from engine.providers.anthropic.blocks import Block, iter_blocks, prefix_hashes
from engine.providers.anthropic.capabilities import ModelInfo, capabilities

_DATED = re.compile(r"-\d{8}$")

__all__ = ["Prepared", "prepare"]

_TTLS = ("5m", "1h")
_ROLES = ("user", "assistant", "system")  # role "system" messages: the beta API takes them
_UNNAMED_TOOLS = ("mcp_toolset",)
_TOOL_CHOICES = ("auto", "any", "tool", "none")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated request, walked once."""

    params: dict[str, Any]
    model: str
    info: ModelInfo
    blocks: list[Block]
    hashes: list[bytes]
    cumulative: list[int]
    markers: list[tuple[int, str]]  # (block index, ttl) in prefix order
    max_tokens: int
    stream: bool
    forced_tool: str | None
    output_schema: dict[str, Any] | None
    thinking: str | None = None  # "enabled" / "adaptive" when the reply thinks
    response_model: str = ""  # the dated id an alias resolves to

    @property
    def overhead_tokens(self) -> int:
        """The fixed per-request input tokens (ANTHROPIC.md, "Later facts")."""
        return int(capabilities().limits["request_overhead_tokens"])

    @property
    def total_tokens(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0


def prepare(params: dict[str, Any], *, tier: str, counting: bool = False) -> Prepared:
    """Validate ``params`` and walk it; raise ``ApiError`` like the API would."""
    rules.check_fields(params, counting)
    model = _check_model(params)
    info = capabilities().model(model)
    max_tokens = 0 if counting else _check_max_tokens(params)
    if not counting:
        rules.check_max_tokens(max_tokens, model, info)
    _check_messages(params.get("messages"))
    rules.check_conversation(params["messages"])
    _check_system(params.get("system"))
    rules.check_system_texts(params.get("system"))
    tools = _check_tools(params.get("tools"))
    forced = _check_tool_choice(params.get("tool_choice"), tools)
    schema = _output_schema(params)
    stream = params.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid_request("stream: Input should be a valid boolean")
    if stream and tier == "batch":
        raise invalid_request("stream: streaming is not supported for requests inside a message batch")
    if not counting and max_tokens == 0:
        _check_prewarm(params, stream=stream, schema=schema, forced=forced, tier=tier)
    budget_cap = max_tokens if not counting else 1 << 62
    thinking = rules.check_thinking(params, info, budget_cap, forced is not None)
    rules.check_sampling(params, info, thinking is not None)
    blocks = iter_blocks(params)
    markers = _markers(params, blocks, info)
    blocks = _with_auto_marker(params, blocks, markers)
    return Prepared(
        params=params,
        model=model,
        info=info,
        blocks=blocks,
        hashes=prefix_hashes(params, blocks),
        cumulative=list(accumulate(b.tokens for b in blocks)),
        markers=[(i, _ttl(b.cache_control)) for i, b in enumerate(blocks) if b.cache_control is not None],
        max_tokens=max_tokens,
        stream=stream,
        forced_tool=forced,
        output_schema=schema,
        thinking=thinking,
        response_model=_resolved(model, info),
    )


def _resolved(model: str, info: ModelInfo) -> str:
    """An alias answers with its dated id (ANTHROPIC.md, "Later facts"); a dated id stands."""
    dated = info.api.dated_id
    if dated is None or _DATED.search(model) or "@" in model or "." in model.split("-")[0]:
        return model
    return dated


def _check_model(params: dict[str, Any]) -> str:
    model = params.get("model")
    if model is None:
        raise invalid_request("model: Field required")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Input should be a valid string")
    if not capabilities().model(model).known:
        raise not_found(f"model: {model}")
    return model


def _check_max_tokens(params: dict[str, Any]) -> int:
    if "max_tokens" not in params:
        raise invalid_request("max_tokens: Field required")
    value = params["max_tokens"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request("max_tokens: Input should be a valid integer")
    if value < 0:
        raise invalid_request("max_tokens: Input should be greater than or equal to 0")
    return value


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise invalid_request("messages: Field required")
    if not isinstance(messages, list):
        raise invalid_request("messages: Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_request(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in _ROLES:
            raise invalid_request(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        if "content" not in message:
            raise invalid_request(f"messages.{i}.content: Field required")
        _check_content(f"messages.{i}.content", message["content"])


def _check_content(path: str, content: Any) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_request(f"{path}: Input should be a valid string or a list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid_request(f"{path}.{j}.type: Field required")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise invalid_request(f"{path}.{j}.text: Field required")
        if block["type"] == "tool_result" and isinstance(block.get("content"), list):
            _check_content(f"{path}.{j}.content", block["content"])


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid_request("system: Input should be a valid string or a list of text blocks")
    for j, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise invalid_request(f"system.{j}: Input should be a text block")


def _check_tools(tools: Any) -> dict[str, dict[str, Any]]:
    """The tools by name (custom ones need an ``input_schema``; names are unique)."""
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise invalid_request("tools: Input should be a valid list")
    names: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_request(f"tools.{i}: Input should be a valid dictionary")
        if tool.get("type") in _UNNAMED_TOOLS:
            continue  # a toolset names no single tool (its server's tools are called by their names)
        if not isinstance(tool.get("name"), str):
            raise invalid_request(f"tools.{i}.name: Field required")
        if tool.get("type", "custom") == "custom" and not isinstance(tool.get("input_schema"), dict):
            raise invalid_request(f"tools.{i}.input_schema: Field required")
        if isinstance(tool.get("input_schema"), dict):
            _check_schema(f"tools.{i}.custom.input_schema", tool["input_schema"])
        if tool["name"] in names:
            raise invalid_request(f"tools: Tool names must be unique. Duplicate: {tool['name']!r}")
        names[tool["name"]] = tool
    return names


def _check_tool_choice(choice: Any, tool_names: dict[str, dict[str, Any]]) -> str | None:
    """The name of the tool the reply must call, if ``tool_choice`` forces one.

    ``any`` picks the first tool a client defined (by name), else the first tool.
    """
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
        raise invalid_request("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    kind = choice["type"]
    if kind in ("any", "tool") and not tool_names:
        raise invalid_request(f"tool_choice: tool_choice.type '{kind}' requires tools to be provided")
    if kind == "tool":
        name = choice.get("name")
        if name not in tool_names:
            raise invalid_request(f"tool_choice.name: Tool '{name}' not found in tools")
        return str(name)
    if kind == "any":
        custom = [n for n, t in tool_names.items() if isinstance(t.get("input_schema"), dict)]
        return sorted(custom or tool_names)[0]
    return None


def _output_schema(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``output_config.format`` (or the older top-level ``output_format``)."""
    config = params.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise invalid_request("output_config: Input should be a valid dictionary")
    fmt, where = (config or {}).get("format"), "output_config.format"
    if fmt is None and params.get("output_format") is not None:
        fmt, where = params["output_format"], "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid_request(f"{where}.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise invalid_request(f"{where}.schema: Field required")
    _check_schema(f"{where}.schema", schema)
    return schema


def _check_schema(where: str, schema: dict[str, Any]) -> None:
    """A JSON schema the validator library accepts, else the API's 400."""
    try:
        Draft202012Validator.check_schema(schema)
    except (SchemaError, RecursionError):
        raise invalid_request(
            f"{where}: JSON schema is invalid - please consult https://json-schema.org or our "
            "documentation at https://docs.anthropic.com/en/docs/tool-use"
        ) from None


def _check_prewarm(
    params: dict[str, Any], *, stream: bool, schema: dict[str, Any] | None, forced: str | None, tier: str
) -> None:
    """``max_tokens: 0`` pre-warms the cache; the API refuses it with these features."""
    thinking = params.get("thinking")
    clashes = [
        ("stream", stream),
        ("thinking", isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")),
        ("output_config.format", schema is not None),
        ("a forced tool_choice", forced is not None),
        ("a message batch", tier == "batch"),
    ]
    for what, present in clashes:
        if present:
            raise invalid_request(f"max_tokens: 0 (cache pre-warming) cannot be used with {what}")


def _ttl(marker: dict[str, Any] | None) -> str:
    return str((marker or {}).get("ttl", "5m"))


def _check_marker(path: str, marker: Any) -> None:
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        raise invalid_request(f"{path}.type: Input should be 'ephemeral'")
    if marker.get("ttl", "5m") not in _TTLS:
        raise invalid_request(f"{path}.ttl: Input should be '5m' or '1h'")


def _markers(params: dict[str, Any], blocks: list[Block], info: ModelInfo) -> int:
    """Check every explicit marker and the marker rules; return how many there are."""
    count = 0
    seen_5m = False
    auto = params.get("cache_control")
    if auto is not None:
        _check_marker("cache_control", auto)
    for block in blocks:
        if block.cache_control is None:
            continue
        _check_marker(f"{block.dotted}.cache_control", block.cache_control)
        if not block.markable:
            what = "empty text blocks" if block.type == "text" else f"{block.type} blocks"
            raise invalid_request(f"{block.dotted}.cache_control: cache_control cannot be set for {what}")
        count += 1
    limit = int(capabilities().limits["max_cache_markers"])
    found = count + (1 if auto is not None else 0)
    if found > limit:
        raise invalid_request(
            f"A maximum of {limit} blocks with cache_control may be provided. Found {found}."
        )
    for block in blocks:
        ttl = _ttl(block.cache_control) if block.cache_control is not None else None
        if ttl == "1h" and seen_5m:
            raise invalid_request(
                f"{block.dotted}.cache_control.ttl: a ttl='1h' cache_control block must not come "
                "after a ttl='5m' cache_control block"
            )
        if ttl == "1h" and not info.ttl_1h:
            raise invalid_request(
                f"{block.dotted}.cache_control.ttl: ttl='1h' is not supported by this model"
            )
        seen_5m = seen_5m or ttl == "5m"
    return count


def _with_auto_marker(params: dict[str, Any], blocks: list[Block], explicit: int) -> list[Block]:
    """Apply a top-level ``cache_control``: a marker on the last markable block."""
    auto = params.get("cache_control")
    if auto is None:
        return blocks
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i].markable:
            marker = blocks[i].cache_control
            if marker is not None:
                if _ttl(marker) != _ttl(auto):  # ANTHROPIC.md, "Later facts": a 400; the same TTL is a no-op
                    raise invalid_request(
                        f"{blocks[i].dotted}.cache_control.ttl: ttl='{_ttl(marker)}' on the last block "
                        f"conflicts with the top-level cache_control ttl='{_ttl(auto)}'"
                    )
                return blocks
            if _ttl(auto) == "1h" and any(
                _ttl(b.cache_control) == "5m" for b in blocks[:i] if b.cache_control
            ):
                raise invalid_request(
                    "cache_control.ttl: a ttl='1h' cache_control block must not come "
                    "after a ttl='5m' cache_control block"
                )
            out = list(blocks)
            out[i] = dataclasses.replace(blocks[i], cache_control=dict(auto))
            return out
    return blocks
