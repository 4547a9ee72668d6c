"""``wrap_factory``: the one line the host changes.

The wrapper keeps the factory's name, docstring and signature, sync or async alike,
and decides per model it builds: untouched (the very object) when the engine is off
or the provider is one it does not handle; otherwise a hooked twin of the same class.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from engine.adapter._call import Binding
from engine.adapter._model import wrap_model
from engine.adapter.engine import PolicyEngine
from engine.providers.anthropic.transport import CLAUDE_PROVIDERS, transport_for_provider

__all__ = ["CLAUDE_PROVIDERS", "wrap_factory"]

F = TypeVar("F", bound=Callable[..., Any])


def _provider_of(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The ``provider`` argument, or else the first positional one (a factory that names it otherwise)."""
    try:
        provider = signature.bind(*args, **kwargs).arguments.get("provider")
    except TypeError:
        provider = None
    if provider is None:
        provider = kwargs.get("provider", args[0] if args else None)
    return provider if isinstance(provider, str) else None


def _handles(model: Any) -> bool:
    """Only LangChain's ChatAnthropic has the hooks the engine uses; anything else stays as built."""
    from langchain_anthropic import ChatAnthropic

    return isinstance(model, ChatAnthropic)


def _maybe_wrap(model: Any, engine: PolicyEngine, provider: str | None, role: str | None) -> Any:
    if provider not in CLAUDE_PROVIDERS or not engine.enabled or not _handles(model):
        return model
    try:
        return wrap_model(model, Binding(engine, provider, transport_for_provider(provider), role))
    except Exception as exc:  # fail open: the factory's own model
        engine.once.warn(f"wrap:{type(model).__name__}:{type(exc).__name__}", "model not wrapped: %r", exc)
        return model


def wrap_factory(factory: F, engine: PolicyEngine, *, role: str | None = None) -> F:
    """``factory`` with ``engine``'s policy applied to the Claude models it builds.

    ``role`` names the role the models are built for (``"indexing"``); it is the call
    site of calls that name none in their metadata.
    """
    signature = inspect.signature(factory)
    if inspect.iscoroutinefunction(factory):

        @functools.wraps(factory)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            model = await factory(*args, **kwargs)
            return _maybe_wrap(model, engine, _provider_of(signature, args, kwargs), role)

        async_wrapper.__signature__ = signature  # type: ignore[attr-defined]
        return cast(F, async_wrapper)

    @functools.wraps(factory)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        model = factory(*args, **kwargs)
        return _maybe_wrap(model, engine, _provider_of(signature, args, kwargs), role)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return cast(F, wrapper)
