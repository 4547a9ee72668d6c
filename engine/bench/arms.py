"""The benchmark's arms: the same scripted call, sent the way each alternative sends it.

- ``no-policy``: the plain factory's ChatAnthropic.
- ``langchain-middleware``: LangChain's own ``AnthropicPromptCachingMiddleware``
  (langchain_anthropic.middleware) run on a ``langchain.agents`` ``ModelRequest``: it
  tags the last system block and the last tool and passes a top-level
  ``cache_control`` through ``model_settings``; the handler binds the request the
  way ``langchain.agents``' model node does (``bind_tools(..., **model_settings)``).
- ``litellm-system``: LiteLLM's own ``acompletion`` with
  ``cache_control_injection_points=[{"location": "message", "role": "system"}]``,
  ``api_base`` pointed at the emulator.
- ``policy``: the factory wrapped with :func:`engine.adapter.wrap_factory`.

Each arm uses its own API key, so the emulator bills (and caches) them apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from engine.bench.workloads import WorkloadCall

__all__ = [
    "ARMS",
    "LITELLM_FALLBACK_NOTE",
    "Caller",
    "litellm_available",
    "litellm_caller",
    "litellm_rule_caller",
    "middleware_caller",
    "model_caller",
]

ARMS: tuple[str, ...] = ("no-policy", "langchain-middleware", "litellm-system", "policy")
#: Sends one call; what it returns is the call's answer as text when it has one (None otherwise).
Caller = Callable[[WorkloadCall], Awaitable[Any]]


def _noop(**_: Any) -> str:
    return ""


_TOOL_CACHE: dict[int, list[BaseTool]] = {}


def as_tools(tools: tuple[dict[str, Any], ...]) -> list[BaseTool]:
    """The workload's tool definitions as LangChain tools (what an agent binds)."""
    key = id(tools)
    if key not in _TOOL_CACHE:
        _TOOL_CACHE[key] = [
            StructuredTool.from_function(
                func=_noop, name=t["name"], description=t["description"], args_schema=t["input_schema"]
            )
            for t in tools
        ]
    return _TOOL_CACHE[key]


async def _send(
    runnable: Runnable[Any, Any], call: WorkloadCall, messages: list[BaseMessage], config: Any
) -> str:
    """Send the call; its answer as text (a stream's chunks joined), to compare across arms."""
    if call.shape == "astream":
        final: Any = None
        async for chunk in runnable.astream(messages, config=config):
            final = chunk if final is None else final + chunk
        return _answer(final)
    return _answer(await runnable.ainvoke(messages, config=config))


def _answer(result: Any) -> str:
    content = getattr(result, "content", result)
    calls = getattr(result, "tool_calls", None)
    return json.dumps([content, calls], sort_keys=True, default=str)


def _bind(llm: Any, call: WorkloadCall, tools: list[Any], settings: dict[str, Any]) -> Runnable[Any, Any]:
    if call.schema is not None:
        seq = llm.with_structured_output(call.schema, method="json_schema")
        return seq.first.bind(**settings) | seq.last if settings else seq  # type: ignore[no-any-return]
    if tools:
        return llm.bind_tools(tools, **settings)  # type: ignore[no-any-return]
    return llm.bind(**settings) if settings else llm  # type: ignore[no-any-return]


def model_caller(llm: BaseChatModel, *, with_call_site: bool) -> Caller:
    """Send each call through ``llm`` (the plain or the wrapped factory's model)."""

    async def call(item: WorkloadCall) -> str:
        config: RunnableConfig | None = (
            {"metadata": {"call_site": item.call_site}} if with_call_site else None
        )
        runnable = _bind(llm, item, as_tools(item.tools), {})
        if config is not None:
            runnable = runnable.with_config(config)
        return await _send(runnable, item, list(item.messages), config)

    return call


def middleware_caller(llm: BaseChatModel) -> Caller:
    """Send each call through LangChain's AnthropicPromptCachingMiddleware."""
    from langchain.agents.middleware.types import ModelRequest, ModelResponse
    from langchain_anthropic.middleware import AnthropicPromptCachingMiddleware

    middleware = AnthropicPromptCachingMiddleware()

    async def call(item: WorkloadCall) -> None:
        system = next((m for m in item.messages if isinstance(m, SystemMessage)), None)
        rest = [m for m in item.messages if not isinstance(m, SystemMessage)]

        async def handler(request: ModelRequest) -> ModelResponse:
            bound = _bind(request.model, item, list(request.tools), dict(request.model_settings))
            head = [request.system_message] if request.system_message is not None else []
            await _send(bound, item, [*head, *request.messages], None)
            return ModelResponse(result=[])

        request = ModelRequest(
            model=llm,
            messages=rest,  # type: ignore[arg-type]
            system_message=system,
            tools=list(as_tools(item.tools)),
        )
        await middleware.awrap_model_call(request, handler)

    return call


LITELLM_FALLBACK_NOTE = (
    "litellm is not installed (pip install 'llm-policy[peers]'): its documented rule was reproduced "
    "instead (the system message's last block tagged cache_control ephemeral 5m, sent through ChatAnthropic)"
)


def _tag_system(messages: tuple[BaseMessage, ...]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for m in messages:
        if isinstance(m, SystemMessage) and m.content:
            blocks: list[Any] = (
                [{"type": "text", "text": m.content}] if isinstance(m.content, str) else list(m.content)
            )
            last = blocks[-1] if isinstance(blocks[-1], dict) else {"type": "text", "text": str(blocks[-1])}
            blocks[-1] = {**last, "cache_control": {"type": "ephemeral"}}
            m = SystemMessage(content=blocks)
        out.append(m)
    return out


def litellm_rule_caller(llm: BaseChatModel) -> Caller:
    """LiteLLM's documented ``{"location": "message", "role": "system"}`` rule, reproduced."""

    async def call(item: WorkloadCall) -> None:
        await _send(_bind(llm, item, as_tools(item.tools), {}), item, _tag_system(item.messages), None)

    return call


_LITELLM_OFFLINE = (
    "LITELLM_OFFLINE_MODE",
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS",
)


def litellm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("litellm") is not None


def litellm_caller(base_url: str, api_key: str, model: str) -> Caller:
    """Send each call through LiteLLM's own code with its system-message injection point."""
    # LiteLLM fetches catalogs from GitHub on its own unless told not to; this project
    # reaches nothing but the emulator, so use the copies bundled with the package.
    for setting in _LITELLM_OFFLINE:
        os.environ.setdefault(setting, "True")
    import litellm
    from langchain_core.messages import convert_to_openai_messages
    from langchain_core.utils.function_calling import convert_to_openai_tool

    async def call(item: WorkloadCall) -> None:
        kwargs: dict[str, Any] = {}
        if item.tools:
            kwargs["tools"] = [convert_to_openai_tool(t) for t in item.tools]
        if item.schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": item.schema.get("title", "output"), "schema": item.schema},
            }
        response = await litellm.acompletion(
            model=f"anthropic/{model}",
            api_base=base_url,
            api_key=api_key,
            messages=convert_to_openai_messages(list(item.messages)),
            cache_control_injection_points=[{"location": "message", "role": "system"}],
            max_tokens=4096,
            stream=item.shape == "astream",
            **kwargs,
        )
        if item.shape == "astream":
            async for _ in response:
                pass

    return call
