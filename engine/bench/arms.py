"""The benchmark's arms: the same scripted call, sent the way each alternative sends it.

- ``no-policy``: the plain factory's ChatAnthropic.
- ``langchain-middleware-5m`` / ``langchain-middleware-1h``: LangChain's own
  ``AnthropicPromptCachingMiddleware(ttl=...)`` (langchain_anthropic.middleware) run on
  a ``langchain.agents`` ``ModelRequest``: it tags the last system block and the last
  tool and passes a top-level ``cache_control`` through ``model_settings``; the handler
  binds the request the way ``langchain.agents``' model node does
  (``bind_tools(..., **model_settings)``).
- ``litellm-auto``: LiteLLM's own ``acompletion`` with its automatic caching of the
  system message and the latest message
  (``cache_control_injection_points=[{"location": "message", "role": "system"},
  {"location": "message", "index": -1}]``), ``api_base`` pointed at the emulator.
- ``sdk-batch``: thirty lines a careful user writes with the ``anthropic`` SDK: every
  call that can wait goes into one Message Batch per burst, every call carries a 5m
  marker on its system prompt (the request LangChain would build, sent by the SDK).
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

ARMS: tuple[str, ...] = (
    "no-policy",
    "langchain-middleware-5m",
    "langchain-middleware-1h",
    "litellm-auto",
    "sdk-batch",
    "policy",
)
#: Each peer arm with the settings it runs (its best documented configuration).
ARM_SETTINGS: dict[str, str] = {
    "no-policy": "ChatAnthropic as the factory builds it",
    "langchain-middleware-5m": 'AnthropicPromptCachingMiddleware(ttl="5m"): last tool, last system block, '
    "top-level cache_control (last block)",
    "langchain-middleware-1h": 'AnthropicPromptCachingMiddleware(ttl="1h"): last tool, last system block, '
    "top-level cache_control (last block)",
    "litellm-auto": 'litellm.acompletion(cache_control_injection_points=[{"location": "message", '
    '"role": "system"}, {"location": "message", "index": -1}])',
    "sdk-batch": "anthropic SDK: calls that can wait go in one Message Batch per burst; a 5m marker on the "
    "system prompt of every call",
    "policy": "wrap_factory + the pipeshub-savings policy",
}
#: Arms whose cost depends on the batch cache hit rate (they send batches).
BATCH_ARMS = frozenset({"sdk-batch", "policy"})
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


def middleware_caller(llm: BaseChatModel, ttl: str = "5m") -> Caller:
    """Send each call through LangChain's AnthropicPromptCachingMiddleware."""
    from langchain.agents.middleware.types import ModelRequest, ModelResponse
    from langchain_anthropic.middleware import AnthropicPromptCachingMiddleware

    middleware = AnthropicPromptCachingMiddleware(ttl=ttl)  # type: ignore[arg-type]

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
    "instead (the system message's and the latest message's last blocks tagged cache_control ephemeral "
    "5m, sent through ChatAnthropic)"
)


def _tagged(m: BaseMessage) -> BaseMessage:
    blocks: list[Any] = (
        [{"type": "text", "text": m.content}] if isinstance(m.content, str) else list(m.content)
    )
    if not blocks:
        return m
    last = blocks[-1] if isinstance(blocks[-1], dict) else {"type": "text", "text": str(blocks[-1])}
    blocks[-1] = {**last, "cache_control": {"type": "ephemeral"}}
    return m.model_copy(update={"content": blocks})


def _tag_system(messages: tuple[BaseMessage, ...]) -> list[BaseMessage]:
    out = [_tagged(m) if isinstance(m, SystemMessage) and m.content else m for m in messages]
    if out and not isinstance(out[-1], SystemMessage) and out[-1].content:
        out[-1] = _tagged(out[-1])
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
    """Send each call through LiteLLM's own code with its automatic caching (system + latest message)."""
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
            cache_control_injection_points=[
                {"location": "message", "role": "system"},
                {"location": "message", "index": -1},
            ],
            max_tokens=4096,
            stream=item.shape == "astream",
            **kwargs,
        )
        if item.shape == "astream":
            async for _ in response:
                pass

    return call


def _system_marked(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with a 5m marker on its last system block (string form made a block)."""
    system = payload.get("system")
    if not system:
        return payload
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
    )
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return {**payload, "system": blocks}


def _payload_of(llm: Any, item: WorkloadCall) -> dict[str, Any]:
    """The request LangChain would send for ``item`` (same tools, schema, messages)."""
    bound = _bind(llm, item, as_tools(item.tools), {})
    first = getattr(bound, "first", bound)
    # LangChain's tracing hints (ls_structured_output_format, ...) are not request fields.
    kwargs = {k: v for k, v in (getattr(first, "kwargs", {}) or {}).items() if not k.startswith("ls_")}
    payload: dict[str, Any] = llm._get_request_payload(list(item.messages), **kwargs)
    payload.pop("stream", None)
    for option in ("extra_headers", "extra_query", "timeout"):  # SDK options, not request fields
        payload.pop(option, None)
    payload.update(payload.pop("extra_body", None) or {})
    return payload


def sdk_batch_caller(
    llm: Any, base_url: str, api_key: str
) -> Callable[[list[WorkloadCall]], Awaitable[None]]:
    """The hand-written arm: one Message Batch per burst for calls that can wait, a cached system prompt."""
    import asyncio
    import inspect

    import anthropic

    client = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, max_retries=2)

    async def direct(item: WorkloadCall) -> None:
        payload = _system_marked(_payload_of(llm, item))
        method = client.messages.stream if item.shape == "astream" else client.messages.create
        known = inspect.signature(method).parameters
        fields = {k: v for k, v in payload.items() if k in known}
        extra = {k: v for k, v in payload.items() if k not in known}  # fields this SDK release does not name
        if item.shape == "astream":
            async with client.messages.stream(**fields, extra_body=extra or None) as stream:
                await stream.get_final_message()
        else:  # timeout as PipesHub's factory sets it
            await client.messages.create(**fields, extra_body=extra or None, timeout=360.0)

    async def group(items: list[WorkloadCall]) -> None:
        waiting = [i for i in items if i.latency != "interactive"]
        await asyncio.gather(*(direct(i) for i in items if i.latency == "interactive"))
        if not waiting:
            return
        requests = [
            {"custom_id": f"item-{n}", "params": _system_marked(_payload_of(llm, i))}
            for n, i in enumerate(waiting)
        ]
        batch = await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        while batch.processing_status != "ended":
            await asyncio.sleep(0.05)
            batch = await client.messages.batches.retrieve(batch.id)
        failed = [
            r async for r in await client.messages.batches.results(batch.id) if r.result.type != "succeeded"
        ]
        if failed:  # a benchmark arm that silently lost its calls would look free
            raise RuntimeError(f"sdk-batch: {len(failed)} batch items did not succeed: {failed[0].result}")

    return group
