"""Which call site a model call belongs to (most explicit wins).

1. ``config={"metadata": {"call_site": ...}}`` on the call (or ``with_config``);
2. the role: ``wrap_factory(..., role=...)``, or ``metadata={"role": ...}`` from the caller;
3. the calling code's own location, ``module.function``, so a deployment can start
   without touching the host's call sites.

For (3) the stack is walked outwards past library frames (LangChain, the SDK,
asyncio, this package) and past the host's own generic helpers (module globs,
:data:`DEFAULT_HELPERS`: PipesHub's ``app.utils.streaming`` reflection/throttling
helpers, ``app.utils.llm``, ``app.utils.concurrency``), so every business caller that
goes through the same helper keeps an id of its own. LangChain runs some steps in
their own asyncio task (a ``RunnableSequence`` step, an ``abatch`` item), which leaves
the caller's frames off the stack; the walk then continues in the task that awaits
the current one. A synchronous call in ``asyncio.to_thread`` (or ``run_in_executor``)
continues in the task awaiting that thread's work. What each code object resolves
to is cached, so the walk costs a few dict lookups.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import CodeType, FrameType
from typing import Any, Literal

__all__ = [
    "DEFAULT_HELPERS",
    "CallSite",
    "CallSiteSource",
    "code_location",
    "frame_local",
    "helper_modules",
    "resolve_call_site",
    "set_helper_modules",
]

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
_LINK_WAIT_S = 0.5

#: The host's generic helpers every call goes through (module globs; a glob also covers
#: the module's submodules). PipesHub's structured-output/reflection and throttling
#: helpers, its model getters, and its ``gather_with_concurrency``.
DEFAULT_HELPERS: tuple[str, ...] = ("app.utils.streaming", "app.utils.llm", "app.utils.concurrency")
#: Comma-separated module globs that replace :data:`DEFAULT_HELPERS` in a deployment.
HELPERS_ENV = "LLM_POLICY_HELPER_MODULES"

#: A comprehension or generator expression is part of the function that holds it (3.11 gives
#: it a frame of its own, 3.12 inlines list comprehensions): its id is that function's.
_COMPREHENSIONS = re.compile(r"(\.<(?:listcomp|dictcomp|setcomp|genexpr)>)+$")

_by_code: dict[CodeType, str | None] = {}
_helpers: tuple[str, ...] = DEFAULT_HELPERS


def helper_modules() -> tuple[str, ...]:
    return _helpers


def set_helper_modules(globs: Iterable[str]) -> None:
    """Module globs whose frames are skipped as generic helpers (replaces the current set)."""
    global _helpers
    _helpers = tuple(g.strip() for g in globs if g.strip())
    _by_code.clear()


def _is_helper(module: str) -> bool:
    return any(fnmatch.fnmatchcase(module, g) or fnmatch.fnmatchcase(module, f"{g}.*") for g in _helpers)


if os.environ.get(HELPERS_ENV) is not None:
    set_helper_modules(os.environ[HELPERS_ENV].split(","))


def _name_of(frame: FrameType) -> str | None:
    """``module.function`` for a caller's frame; None for a library frame (cached per code)."""
    code = frame.f_code
    try:
        return _by_code[code]
    except KeyError:
        pass
    module = str(frame.f_globals.get("__name__", ""))
    name: str | None
    if not module or module.split(".", 1)[0] in LIBRARY_PACKAGES or _is_helper(module):
        name = None
    else:
        qualname = getattr(code, "co_qualname", code.co_name).replace(".<locals>", "")
        name = f"{module}.{_COMPREHENSIONS.sub('', qualname)}"
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


def _awaiter_of(task: asyncio.Future[Any]) -> asyncio.Task[Any] | None:
    """The task waiting on ``task``, directly or through ``asyncio.gather`` (as LangChain's agenerate)."""
    for other in asyncio.all_tasks(task.get_loop()):
        waiter = getattr(other, "_fut_waiter", None)
        if waiter is task or task in getattr(waiter, "_children", ()):
            return other
    return None


def _executor_future(frame: FrameType | None) -> concurrent.futures.Future[Any] | None:
    """The executor work item this thread runs (``to_thread``/``run_in_executor``), if any."""
    while frame is not None:
        if frame.f_code.co_name == "run":
            future = getattr(frame.f_locals.get("self"), "future", None)
            if isinstance(future, concurrent.futures.Future):
                return future
        frame = frame.f_back
    return None


def _linked_awaiter(future: concurrent.futures.Future[Any]) -> asyncio.Task[Any] | None:
    for callback in list(getattr(future, "_done_callbacks", ())):  # asyncio's wrap_future chain
        for cell in getattr(callback, "__closure__", None) or ():
            linked = cell.cell_contents
            if isinstance(linked, asyncio.Future) and not isinstance(linked, asyncio.Task):
                return _awaiter_of(linked)
    return None


def _thread_awaiter(frame: FrameType | None) -> asyncio.Task[Any] | None:
    """The task awaiting the executor work this thread runs: ``asyncio.to_thread`` copies the
    context but not the caller's frames, which stay suspended in that task.

    The worker can start before the loop has chained its future and suspended the caller
    on it, so in asyncio's own executor (threads named ``asyncio_N``) the link is waited
    for briefly; in any other thread pool it is looked up once.
    """
    future = _executor_future(frame)
    if future is None:
        return None
    in_asyncio_pool = threading.current_thread().name.startswith("asyncio_")
    deadline = time.monotonic() + (_LINK_WAIT_S if in_asyncio_pool else 0.0)
    while True:
        task = _linked_awaiter(future)
        if task is not None or time.monotonic() >= deadline or future.done():
            return task
        time.sleep(0.0005)


def frame_local(name: str, function: str, frame: FrameType | None = None) -> Any:
    """Local ``name`` of the nearest caller frame running ``function`` (its task's awaiters and,
    from a worker thread, the awaiting task included), else None. How a role is read from
    the host's ``get_llm_for_role`` without the host passing it on."""
    try:
        for candidate in _caller_frames(frame or sys._getframe(1)):
            if candidate.f_code.co_name == function:
                return candidate.f_locals.get(name)
    except Exception:  # introspection only informs; never breaks the host's call
        return None
    return None


def _caller_frames(frame: FrameType) -> Iterator[FrameType]:
    task = _current_task()
    root = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    yield from _stack(frame, root)
    if task is None:
        task = _thread_awaiter(frame)
        if task is not None:
            yield from _awaiting_frames(task)
    for _ in range(_MAX_TASK_HOPS):
        if task is None:
            return
        task = _awaiter_of(task)
        if task is not None:
            yield from _awaiting_frames(task)


def code_location(frame: FrameType | None = None) -> str:
    """The innermost non-library, non-helper ``module.function`` calling from here, else ``"unknown"``."""
    try:
        found = _first_caller(_caller_frames(frame or sys._getframe(1)))
    except Exception:  # a layout this does not know: the location stays unknown
        found = None
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
