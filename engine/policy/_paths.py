"""JSON paths (``$.spec.rules[0].cache.ttl``) as the findings and the source map spell them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = ["child_path", "dotted", "join_path"]

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def join_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        path = child_path(path, part)
    return path


def dotted(path: str) -> str:
    """``$.spec.rules[0].cache`` -> ``spec.rules[0].cache``: how messages name a place."""
    text = path[1:].lstrip(".")
    return text or "the document"
