"""``wrap_factory``: the one line the host changes.

The wrapper keeps the factory's name, docstring and signature, sync or async alike,
and decides per model it builds: untouched (the very object) when the engine is off
or the provider is one it does not handle; otherwise a hooked twin of the same class.
Wrapping a wrapped factory, or handing it a model it already wrapped, changes nothing,
so a host whose async twin calls the sync factory's module global is wrapped once.

The role a model is built for is read where the host knows it without passing it on:
the ``role`` local of the host's ``get_llm_for_role`` frame (``role_frame``), even across
``asyncio.to_thread``; or a mapping of call-site globs to roles (``roles``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from engine.adapter._call import Binding
from engine.adapter._model import wrap_model
from engine.adapter.bypass import note_direct_transport
from engine.adapter.callsite import frame_local
from engine.adapter.engine import PolicyEngine
from engine.providers.anthropic.transport import CLAUDE_PROVIDERS, transport_for_provider

__all__ = ["CLAUDE_PROVIDERS", "ROLE_FRAME", "wrap_factory"]

#: Where PipesHub names a model's role: ``get_llm_for_role(config_service, role, ...)``.
ROLE_FRAME = ("get_llm_for_role", "role")
_WRAPPED = "__llm_policy_wrapped__"

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


def _is_wrapped(model: Any) -> bool:
    return getattr(type(model), "__llm_policy_binding__", None) is not None


def _built_role(role_frame: tuple[str, str] | None) -> str | None:
    if role_frame is None:
        return None
    found = frame_local(role_frame[1], role_frame[0])
    return found if isinstance(found, str) and found else None


@dataclass(frozen=True)
class _Options:
    role: str | None
    roles: tuple[tuple[str, str], ...]
    role_frame: tuple[str, str] | None


def _maybe_wrap(model: Any, engine: PolicyEngine, provider: str | None, options: _Options) -> Any:
    if provider not in CLAUDE_PROVIDERS or not engine.enabled or not _handles(model) or _is_wrapped(model):
        return model
    try:
        binding = Binding(
            engine,
            provider,
            transport_for_provider(provider),
            options.role,
            built_role=_built_role(options.role_frame),
            roles=options.roles,
        )
        wrapped = wrap_model(model, binding)
    except Exception as exc:  # fail open: the factory's own model
        engine.once.warn(f"wrap:{type(model).__name__}:{type(exc).__name__}", "model not wrapped: %r", exc)
        return model
    note_direct_transport(engine, binding, model)
    return wrapped


def wrap_factory(
    factory: F,
    engine: PolicyEngine,
    *,
    role: str | None = None,
    roles: Mapping[str, str] | None = None,
    role_frame: tuple[str, str] | None = ROLE_FRAME,
) -> F:
    """``factory`` with ``engine``'s policy applied to the Claude models it builds.

    ``role`` names the role the models are built for (``"indexing"``); it is the call
    site of calls that name none in their metadata. Without it the call site is the
    calling code, and the role is read from the host: ``role_frame`` (function, local)
    names the frame that holds it, ``roles`` maps call-site globs to roles. A factory
    already wrapped is returned as it is.
    """
    if getattr(factory, _WRAPPED, False):
        return factory
    options = _Options(role, tuple((roles or {}).items()), role_frame)
    signature = inspect.signature(factory)
    if inspect.iscoroutinefunction(factory):

        @functools.wraps(factory)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            model = await factory(*args, **kwargs)
            return _maybe_wrap(model, engine, _provider_of(signature, args, kwargs), options)

        async_wrapper.__signature__ = signature  # type: ignore[attr-defined]
        setattr(async_wrapper, _WRAPPED, True)
        return cast(F, async_wrapper)

    @functools.wraps(factory)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        model = factory(*args, **kwargs)
        return _maybe_wrap(model, engine, _provider_of(signature, args, kwargs), options)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    setattr(wrapper, _WRAPPED, True)
    return cast(F, wrapper)
