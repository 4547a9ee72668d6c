"""A request body as keyword arguments of an SDK method, whatever that SDK release names.

SDK releases differ in the body fields their ``messages.create`` (or
``count_tokens``) names as parameters: newer ones dropped the sampling fields
(``temperature``, ``top_k``, ``top_p``), older ones lack the newest fields. The
API takes them all. Fields the method does not name go in ``extra_body``, which
the SDK merges into the body it sends, so one body works on every release.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["sdk_kwargs"]


@functools.lru_cache(maxsize=64)
def _named(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def sdk_kwargs(method: Callable[..., Any], body: dict[str, Any], **options: Any) -> dict[str, Any]:
    """``body`` (plus SDK ``options`` such as ``extra_headers``) as keyword arguments of ``method``."""
    names = _named(getattr(method, "__func__", method))
    out: dict[str, Any] = {k: v for k, v in body.items() if k in names}
    extra = {k: v for k, v in body.items() if k not in names}
    if extra:
        out["extra_body"] = {**(out.get("extra_body") or {}), **extra}
    out.update(options)
    return out
