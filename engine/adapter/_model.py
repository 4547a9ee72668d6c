"""The wrapped model: a subclass of the factory's own class, hooked at the thinnest points.

The subclass (bases: :class:`PolicyHooks`, then the parent) carries the parent's name,
module, qualname and LangChain namespace, so ``isinstance`` checks, ``repr``,
``to_json``/``dumpd`` ids and pydantic fields are the parent's. It overrides only:

- ``_get_request_payload``: where the payload LangChain built becomes the one sent
  (cache markers placed by the run in progress, if any);
- ``_generate`` / ``_agenerate`` / ``_stream`` / ``_astream``: open a run (decide)
  around the parent's method, then log what came back; ``_agenerate`` hands a
  pooled (``accumulate``) or pre-submitted (``abatch``) call to the batch path;
- ``_should_stream``: an ``ainvoke`` that a pool will hold must not stream;
- ``batch`` / ``abatch``: an ``explicit`` batch rule sends them as one Message Batch.

Everything else (``bind_tools``, ``with_structured_output``, callbacks, retries) is
the parent's code running unchanged on top of these hooks.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig, ensure_config

from engine.adapter import _batch
from engine.adapter._call import Binding, CallRun
from engine.ledger import CallShape

__all__ = ["PolicyHooks", "active", "policied_class", "wrap_model"]

#: The run whose payload ``_get_request_payload`` is building, set around the parent's methods.
_RUN: contextvars.ContextVar[tuple[CallRun, bool] | None] = contextvars.ContextVar(
    "llm_policy_run", default=None
)

#: The metadata of a streamed call: LangChain opens the run but calls ``_stream``/``_astream``
#: without its run manager, so ``stream``/``astream`` and ``_should_stream`` pass it here.
_STREAM_METADATA: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "llm_policy_stream_metadata", default=None
)

_classes: dict[tuple[type[Any], Binding], type[Any]] = {}
_classes_lock = threading.Lock()


def _metadata(run_manager: Any) -> Mapping[str, Any] | None:
    return getattr(run_manager, "metadata", None) if run_manager is not None else None


def _stream_metadata(run_manager: Any) -> Mapping[str, Any] | None:
    if run_manager is not None:
        return _metadata(run_manager)
    metadata = _STREAM_METADATA.get()
    _STREAM_METADATA.set(None)
    return metadata


def _config_metadata(config: RunnableConfig | None) -> Mapping[str, Any] | None:
    return ensure_config(config).get("metadata")


def _answered_usage(output: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The response's ``usage``, with the API's ``cache_miss_reason`` (cache-miss
    diagnostics, when the request asked for them) carried along for the cache doctor."""
    usage = (output or {}).get("usage")
    reason = ((output or {}).get("diagnostics") or {}).get("cache_miss_reason")
    return {**usage, "cache_miss_reason": reason} if usage and reason else usage


def _stream_usage(total: UsageMetadata | None) -> dict[str, Any] | None:
    """An API-shaped ``usage`` rebuilt from the summed stream chunks' ``usage_metadata``."""
    if total is None:
        return None
    details: Mapping[str, Any] = total.get("input_token_details") or {}
    read = int(details.get("cache_read") or 0)
    w5m = int(details.get("ephemeral_5m_input_tokens") or 0)
    w1h = int(details.get("ephemeral_1h_input_tokens") or 0)
    written = (w5m + w1h) or int(details.get("cache_creation") or 0)
    usage: dict[str, Any] = {
        "input_tokens": max(0, total["input_tokens"] - read - written),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
        "output_tokens": total["output_tokens"],
    }
    if w5m + w1h:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": w5m, "ephemeral_1h_input_tokens": w1h}
    # else: the stream's final usage gave no TTL split; the record infers it from the markers sent
    return usage


def _add(total: UsageMetadata | None, chunk: ChatGenerationChunk) -> UsageMetadata | None:
    usage = getattr(chunk.message, "usage_metadata", None)
    return add_usage(total, usage) if usage else total


def _token_counter(model: Any) -> Callable[[dict[str, Any]], int] | None:
    """``count_tokens`` on the model's own (synchronous) client, or None where there is none.

    Only asked for prefixes whose estimate is near the cache minimum, once per prefix.
    """
    from engine.providers.anthropic.caching import sdk_counter

    try:
        return sdk_counter(model._client)
    except Exception:
        return None


class active:
    """Sets the current run for the parent's payload building; logs an error if one escapes."""

    __slots__ = ("batch", "finish_on_error", "run", "token")

    def __init__(self, run: CallRun, *, batch: bool = False, finish_on_error: bool = True) -> None:
        self.run, self.batch, self.finish_on_error = run, batch, finish_on_error

    def __enter__(self) -> CallRun:
        self.token = _RUN.set((self.run, self.batch))
        return self.run

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        _RUN.reset(self.token)
        if error is not None and self.finish_on_error:
            self.run.finish(None, error=error)


def _as_parent(parent: type[Any], state: Any) -> Any:
    model = object.__new__(parent)
    model.__setstate__(state)
    return model


def _binding(model: Any) -> Binding:
    binding: Binding = type(model).__llm_policy_binding__
    return binding


def _parent(model: Any) -> type[Any]:
    parent: type[Any] = type(model).__llm_policy_parent__
    return parent


def _start(model: Any, shape: CallShape, run_manager: Any) -> CallRun | None:
    streamed = shape in ("stream", "astream")
    metadata = _stream_metadata(run_manager) if streamed else _metadata(run_manager)
    return _binding(model).start(str(model.model), _batch.shape_for(shape), metadata, caller=_batch.caller())


class PolicyHooks:
    """The methods the hooked subclass overrides; each ends in the parent's own (``super()``)."""

    def _get_request_payload(
        self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        current = _RUN.get()
        prebuilt = current[0].prebuilt if current is not None else None
        if prebuilt is not None:
            current[0].prebuilt = None  # type: ignore[index]  # built once, before a pool declined it
            payload = prebuilt
        else:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)  # type: ignore[misc]
        if current is None:
            return payload
        run, batch = current
        return run.apply(payload, batch=batch, counter=_token_counter(self))

    def _should_stream(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        streams: bool = super()._should_stream(  # type: ignore[misc]
            async_api=async_api, run_manager=run_manager, **kwargs
        )
        if not streams or run_manager is None:
            return streams
        if kwargs.get("stream"):  # the caller asked for a stream: it goes direct, streamed
            _STREAM_METADATA.set(_metadata(run_manager))
            return True
        if _batch.prepared() is not None:
            return False
        if async_api and _binding(self).pools(str(self.model), _metadata(run_manager)):  # type: ignore[attr-defined]
            return False  # an ainvoke the pool will hold goes through _agenerate, not streamed
        # invoke on a streaming model: LangChain calls _stream without the run manager
        _STREAM_METADATA.set(_metadata(run_manager))
        return True

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        direct = super()._generate  # type: ignore[misc]
        run = _start(self, "invoke", run_manager)
        if run is None:
            result: ChatResult = direct(messages, stop, run_manager, **kwargs)
            return result
        table = _batch.prepared()
        if table is not None:
            answered = _batch.answer_prepared(self, _parent(self), table, messages, stop, kwargs)
            if answered is not None:
                return answered
        run.pool_plan()
        with active(run):
            result = direct(messages, stop, run_manager, **kwargs)
        run.finish(_answered_usage(result.llm_output))
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        direct = super()._agenerate  # type: ignore[misc]
        run = _start(self, "ainvoke", run_manager)
        if run is None:
            result: ChatResult = await direct(messages, stop, run_manager, **kwargs)
            return result
        table = _batch.prepared()
        if table is not None:
            answered = _batch.answer_prepared(self, _parent(self), table, messages, stop, kwargs)
            if answered is not None:
                return answered
        plan = run.pool_plan()
        if plan is not None and plan.mode == "accumulate":
            pooled = await _batch.pooled(self, run, plan, messages, stop, kwargs, _metadata(run_manager))
            if pooled is not None:
                return pooled
        with active(run):
            result = await direct(messages, stop, run_manager, **kwargs)
        run.finish(_answered_usage(result.llm_output))
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        run = _start(self, "stream", run_manager)
        chunks = super()._stream(messages, stop, run_manager, **kwargs)  # type: ignore[misc]
        if run is None:
            yield from chunks
            return
        run.pool_plan()
        total: UsageMetadata | None = None
        answered = False
        try:
            with active(run, finish_on_error=False):  # the payload is built before the first chunk
                chunk = next(chunks, None)
            while chunk is not None:
                answered = True
                total = _add(total, chunk)
                yield chunk
                chunk = next(chunks, None)
        except BaseException as error:
            run.finish(None, error=error, answered=answered)
            raise
        run.finish(_stream_usage(total))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        run = _start(self, "astream", run_manager)
        chunks = super()._astream(messages, stop, run_manager, **kwargs).__aiter__()  # type: ignore[misc]
        if run is None:
            async for chunk in chunks:
                yield chunk
            return
        run.pool_plan()
        total: UsageMetadata | None = None
        answered = False
        try:
            with active(run, finish_on_error=False):  # the payload is built before the first chunk
                chunk = await anext(chunks, None)
            while chunk is not None:
                answered = True
                total = _add(total, chunk)
                yield chunk
                chunk = await anext(chunks, None)
        except BaseException as error:
            run.finish(None, error=error, answered=answered)
            raise
        run.finish(_stream_usage(total))

    def stream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """The parent's ``stream``, with the call's metadata where ``_stream`` can find it."""
        metadata = _config_metadata(config)
        chunks = super().stream(input, config, stop=stop, **kwargs)  # type: ignore[misc]
        while True:
            token = _STREAM_METADATA.set(metadata)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            finally:
                _STREAM_METADATA.reset(token)
            yield chunk

    async def astream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """The parent's ``astream``, with the call's metadata where ``_astream`` can find it."""
        metadata = _config_metadata(config)
        chunks = super().astream(input, config, stop=stop, **kwargs).__aiter__()  # type: ignore[misc]
        while True:
            token = _STREAM_METADATA.set(metadata)
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            finally:
                _STREAM_METADATA.reset(token)
            yield chunk

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        return _batch.run_batch(
            self, _parent(self), _binding(self), inputs, config, return_exceptions, kwargs
        )

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        binding, parent = _binding(self), _parent(self)
        return await _batch.run_abatch(self, parent, binding, inputs, config, return_exceptions, kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle as the parent class: a process that unpickles it has no engine to bind."""
        return _as_parent, (_parent(self), self.__getstate__())


def policied_class(parent: type[Any], binding: Binding) -> type[Any]:
    """The subclass of ``parent`` hooked to ``binding`` (built once per pair)."""
    key = (parent, binding)
    with _classes_lock:
        cls = _classes.get(key)
        if cls is None:
            namespace = {
                "__module__": parent.__module__,
                "__qualname__": parent.__qualname__,
                "__doc__": parent.__doc__,
                "__llm_policy_binding__": binding,
                "__llm_policy_parent__": parent,
            }
            cls = type(parent.__name__, (PolicyHooks, parent), namespace)
            _classes[key] = cls
    return cls


def wrap_model(model: Any, binding: Binding) -> Any:
    """A copy of ``model`` whose class is the hooked subclass (the factory's object is untouched)."""
    twin = model.model_copy()
    object.__setattr__(twin, "__class__", policied_class(type(model), binding))
    return twin
