"""The API's strict checks of a ``messages.create`` body (ANTHROPIC.md, "Later facts").

Kept apart from :mod:`validate` (shape and cache markers) so each refusal the real
API makes has one small function here, named by what it refuses: unknown top-level
fields, empty content, a ``tool_result`` without its ``tool_use``, sampling
parameters out of range or on a model that refuses them, ``max_tokens`` above the
model's limit, thinking and effort settings. Messages copy the API's where known;
where the docs give none the text is the emulator's own, in the same
``path: problem`` form.
"""

from __future__ import annotations

from typing import Any

from anthropic.types import message_count_tokens_params as _count
from anthropic.types import message_create_params as _standard
from anthropic.types.beta import message_count_tokens_params as _beta_count
from anthropic.types.beta import message_create_params as _beta

from engine.emulator.errors import invalid_request
from engine.providers.anthropic.capabilities import ModelInfo, capabilities

__all__ = [
    "COUNT_FIELDS",
    "REQUEST_FIELDS",
    "check_conversation",
    "check_fields",
    "check_max_tokens",
    "check_sampling",
    "check_system_texts",
    "check_thinking",
    "thinking_budget",
]


def _keys(params: Any) -> frozenset[str]:
    return frozenset(params.__required_keys__ | params.__optional_keys__)


#: Every top-level field the API takes: the official SDK's request types (standard and
#: beta; ``betas`` travels as a header), ``stream``, the sampling parameters older
#: models still take, and the structured-outputs beta's ``output_format``. Anything
#: else, SDK client options such as ``extra_headers`` or ``timeout`` included, is a 400.
REQUEST_FIELDS = (_keys(_standard.MessageCreateParamsBase) | _keys(_beta.MessageCreateParamsBase)) - {
    "betas"
} | {"stream", "temperature", "top_p", "top_k", "output_format"}

#: What ``count_tokens`` takes: the same, minus what only generation uses (``max_tokens``...).
COUNT_FIELDS = (_keys(_count.MessageCountTokensParams) | _keys(_beta_count.MessageCountTokensParams)) - {
    "betas"
}

_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def check_fields(params: dict[str, Any], counting: bool = False) -> None:
    """400 for the first top-level key the API does not know."""
    known = COUNT_FIELDS if counting else REQUEST_FIELDS
    for key in params:
        if key not in known:
            raise invalid_request(f"{key}: Extra inputs are not permitted")


def _number(params: dict[str, Any], name: str, low: float, high: float | None) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_request(f"{name}: Input should be a valid number")
    if value < low:
        raise invalid_request(f"{name}: Input should be greater than or equal to {low:g}")
    if high is not None and value > high:
        raise invalid_request(f"{name}: Input should be less than or equal to {high:g}")
    return float(value)


def check_sampling(params: dict[str, Any], info: ModelInfo, thinking: bool) -> None:
    """temperature 0..1, top_p 0..1, top_k >= 0; refused where the model or thinking refuses them."""
    temperature = _number(params, "temperature", 0, 1)
    top_p = _number(params, "top_p", 0, 1)
    top_k = _number(params, "top_k", 0, None)
    if top_k is not None and not isinstance(params["top_k"], int):
        raise invalid_request("top_k: Input should be a valid integer")
    if not info.api.sampling:
        for name, value, default in (("temperature", temperature, 1.0), ("top_p", top_p, 1.0)):
            if value is not None and value != default:
                raise invalid_request(
                    f"{name}: `{name}` is not supported for this model at non-default values"
                )
        if top_k is not None:
            raise invalid_request("top_k: `top_k` is not supported for this model")
    if not thinking:
        return
    if temperature is not None and temperature != 1:
        raise invalid_request(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}#feature-compatibility"
        )
    if top_k is not None:
        raise invalid_request(
            "`top_k` must be unset when thinking is enabled. Please consult our documentation at "
            + _THINKING_DOCS
        )
    if top_p is not None and top_p < 0.95:
        raise invalid_request(
            "`top_p` must be between 0.95 and 1 when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}"
        )


def check_max_tokens(max_tokens: int, model: str, info: ModelInfo) -> None:
    limit = info.api.max_output_tokens
    if max_tokens > limit:
        raise invalid_request(
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output "
            f"tokens for {model}"
        )


def check_thinking(params: dict[str, Any], info: ModelInfo, max_tokens: int, forced: bool) -> str | None:
    """The thinking type in force (``enabled`` / ``adaptive``) or None; 400 where the API refuses."""
    _check_effort(params, info)
    thinking = params.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive", "disabled"):
        raise invalid_request("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
    kind = str(thinking["type"])
    display = thinking.get("display")
    if display is not None and (kind == "disabled" or display not in ("summarized", "omitted")):
        raise invalid_request(f"thinking.{kind}.display: Input should be 'summarized' or 'omitted'")
    if kind == "disabled":
        return None
    if kind not in info.api.thinking:
        if kind == "enabled" and "adaptive" in info.api.thinking:
            raise invalid_request(
                "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive "
                "and output_config.effort to control thinking behavior."
            )
        raise invalid_request(f"thinking.type: '{kind}' thinking is not supported for this model")
    if kind == "enabled":
        _check_budget(thinking, max_tokens)
    if forced:
        raise invalid_request("Thinking may not be enabled when tool_choice forces tool use.")
    return kind


def _check_budget(thinking: dict[str, Any], max_tokens: int) -> None:
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise invalid_request("thinking.enabled.budget_tokens: Field required")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise invalid_request("thinking.enabled.budget_tokens: Input should be a valid integer")
    least = int(capabilities().limits["thinking_min_budget_tokens"])
    if budget < least:
        raise invalid_request(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {least}"
        )
    if budget >= max_tokens:
        raise invalid_request(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
            f"at {_THINKING_DOCS}#max-tokens-and-context-window-size"
        )


def _check_effort(params: dict[str, Any], info: ModelInfo) -> None:
    config = params.get("output_config")
    if not isinstance(config, dict) or config.get("effort") is None:
        return
    levels = [str(level) for level in capabilities().limits["effort_levels"]]
    effort = config["effort"]
    if effort not in levels:
        quoted = ", ".join(f"'{level}'" for level in levels[:-1]) + f" or '{levels[-1]}'"
        raise invalid_request(f"output_config.effort: Input should be {quoted}")
    if not info.api.effort:
        raise invalid_request("output_config.effort: effort is not supported for this model")


def thinking_budget(params: dict[str, Any], max_tokens: int) -> int:
    """How many of ``max_tokens`` the reply's thinking may use."""
    thinking = params.get("thinking") or {}
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    return min(max_tokens // 2, int(budget)) if isinstance(budget, int) else max_tokens // 2


# -- the conversation ------------------------------------------------------------------


def check_conversation(messages: list[dict[str, Any]]) -> None:
    """Non-empty content and text; each ``tool_result`` answers a ``tool_use`` of the turn before."""
    last = len(messages) - 1
    for i, message in enumerate(messages):
        content = message["content"]
        if not content and not (i == last and message["role"] == "assistant"):
            raise invalid_request(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        if isinstance(content, list):
            _check_texts("messages", content)
            for j, block in enumerate(content):
                if block.get("type") in ("thinking", "redacted_thinking") and "cache_control" in block:
                    raise invalid_request(
                        f"messages.{i}.content.{j}.cache_control: cache_control cannot be set for "
                        f"{block['type']} blocks"
                    )
    for i, message in enumerate(messages):
        previous = (
            _tool_use_ids(messages[i - 1]) if i > 0 and messages[i - 1]["role"] == "assistant" else set()
        )
        answered = _tool_result_ids(message) if message["role"] == "user" else []
        for j, tool_use_id in answered:
            if tool_use_id not in previous:
                raise invalid_request(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block in "
                    "the previous message."
                )
        if message["role"] == "assistant" and i < last:
            missing = sorted(_tool_use_ids(message) - {tid for _, tid in _tool_result_ids(messages[i + 1])})
            if missing:
                raise invalid_request(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )


def check_system_texts(system: Any) -> None:
    if isinstance(system, list):
        _check_texts("system", system)


def _check_texts(where: str, blocks: list[Any]) -> None:
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            text = block.get("text")
            if text == "":
                raise invalid_request(f"{where}: text content blocks must be non-empty")
            if isinstance(text, str) and not text.strip():
                raise invalid_request(f"{where}: text content blocks must contain non-whitespace text")
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            _check_texts(where, block["content"])


def _tool_use_ids(message: dict[str, Any]) -> set[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return set()
    return {str(b.get("id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"}


def _tool_result_ids(message: dict[str, Any]) -> list[tuple[int, str]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [
        (j, str(b.get("tool_use_id")))
        for j, b in enumerate(content)
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
