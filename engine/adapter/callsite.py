"""Which call site a model call belongs to (most explicit wins).

1. ``config={"metadata": {"call_site": ...}}`` on the call (or ``with_config``);
2. the role: ``wrap_factory(..., role=...)``, or ``metadata={"role": ...}`` from the caller;
3. the calling code's own location, ``module.function``, so a deployment can start
   without touching the host's call sites.

For (3) the stack is walked outwards past library frames (LangChain, the SDK,
asyncio, this package). LangChain runs some steps in their own asyncio task (a
``RunnableSequence`` step, an ``abatch`` item), which leaves the caller's frames
off the stack; the walk then continues in the task that awaits the current one.
What each code object resolves to is cached, so the walk costs a few dict lookups.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping
from types import CodeType, FrameType
from typing import Any, Literal

__all__ = ["CallSite", "CallSiteSource", "code_location", "resolve_call_site"]

CallSiteSource = Literal["metadata", "role", "code"]
CallSite = tuple[str, CallSiteSource, str | None]

#: Top-level packages whose frames are never a call site.
LIBRARY_PACKAGES = frozenset(
    {
        "engine",
        "langchain",
        "langchain_core",
        "langchain_anthropic",
        "langsmith",
        "langgraph",
        "anthropic",
        "httpx",
        "httpcore",
        "anyio",
        "asyncio",
        "concurrent",
        "threading",
        "contextvars",
        "contextlib",
        "functools",
        "tenacity",
        "pydantic",
        "_pytest",
        "pytest",
        "pluggy",
        "pytest_asyncio",
        "runpy",
        "importlib",
    }
)
UNKNOWN = "unknown"
_MAX_TASK_HOPS = 8

_by_code: dict[CodeType, str | None] = {}


def _name_of(frame: FrameType) -> str | None:
    """``module.function`` for a caller's frame; None for a library frame (cached per code)."""
    code = frame.f_code
    try:
        return _by_code[code]
    except KeyError:
        pass
    module = str(frame.f_globals.get("__name__", ""))
    name: str | None
    if module.split(".", 1)[0] in LIBRARY_PACKAGES or not module:
        name = None
    else:
        qualname = getattr(code, "co_qualname", code.co_name).replace(".<locals>", "")
        name = f"{module}.{qualname}"
    _by_code[code] = name
    return name


def _first_caller(frames: Iterator[FrameType]) -> str | None:
    for frame in frames:
        name = _name_of(frame)
        if name is not None:
            return name
    return None


def _stack(frame: FrameType | None, root: FrameType | None) -> Iterator[FrameType]:
    """``frame`` and its callers, up to ``root`` (a task's own coroutine; past it runs the loop)."""
    while frame is not None:
        yield frame
        if frame is root:
            return
        frame = frame.f_back


def _current_task() -> asyncio.Task[Any] | None:
    if asyncio.events._get_running_loop() is None:  # plain synchronous code (asking would raise)
        return None
    return asyncio.current_task()


def _awaiting_frames(task: asyncio.Task[Any]) -> Iterator[FrameType]:
    """The frames of ``task``'s await chain, innermost first (a suspended task's stack)."""
    frames: list[FrameType] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return reversed(frames)


def _awaiter_of(task: asyncio.Task[Any]) -> asyncio.Task[Any] | None:
    """The task waiting on ``task``, directly or through ``asyncio.gather`` (as LangChain's agenerate)."""
    for other in asyncio.all_tasks():
        waiter = getattr(other, "_fut_waiter", None)
        if waiter is task or task in getattr(waiter, "_children", ()):
            return other
    return None


def code_location(frame: FrameType | None = None) -> str:
    """The innermost non-library ``module.function`` calling from here, else ``"unknown"``."""
    task = _current_task()
    root = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    found = _first_caller(_stack(frame or sys._getframe(1), root))
    for _ in range(_MAX_TASK_HOPS):
        if found is not None or task is None:
            break
        task = _awaiter_of(task)
        if task is not None:
            found = _first_caller(_awaiting_frames(task))
    return found or UNKNOWN


def resolve_call_site(
    metadata: Mapping[str, Any] | None, role: str | None, *, caller: str | None = None
) -> CallSite:
    """``(call_site, source, role)`` for one call; ``role`` is the one the model was built for,
    ``caller`` a code location already resolved (where ``abatch`` was called)."""
    meta = metadata or {}
    caller_role = meta.get("role")
    role = caller_role if isinstance(caller_role, str) and caller_role else role
    site = meta.get("call_site")
    if isinstance(site, str) and site:
        return site, "metadata", role
    if role:
        return role, "role", role
    return caller or code_location(sys._getframe(1)), "code", role
