"""Copy-on-write edits of a request payload.

The allocator must never mutate what it was given (the caller may reuse the
dict), yet deep-copying a request with megabytes of base64 images per call is
waste. :class:`PayloadEditor` copies only the containers on the way to a block it
changes, each at most once, and shares everything else with the input.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PayloadEditor"]

Path = tuple[str | int, ...]


class PayloadEditor:
    """Shallow copies along edited paths; the result shares untouched subtrees."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.root: dict[str, Any] = dict(payload)
        self._copied: set[int] = {id(self.root)}

    def _own(self, parent: Any, key: str | int) -> Any:
        child = parent[key]
        if id(child) in self._copied:
            return child
        if isinstance(child, dict):
            child = dict(child)
        elif isinstance(child, list):
            child = list(child)
        elif isinstance(child, str):
            # A string-form system prompt or message content: the one-block list form
            # the API treats identically, so a marker can sit on it.
            child = [{"type": "text", "text": child}]
        else:
            return child
        parent[key] = child
        self._copied.add(id(child))
        return child

    def block(self, path: Path) -> dict[str, Any]:
        """The (copied, writable) block at ``path``, converting string forms on the way."""
        node: Any = self.root
        for key in path:
            node = self._own(node, key)
        if not isinstance(node, dict):
            raise TypeError(f"no block at {'.'.join(map(str, path))}")
        return node

    def set_marker(self, path: Path, marker: dict[str, Any]) -> None:
        self.block(path)["cache_control"] = dict(marker)

    def remove_marker(self, path: Path) -> None:
        self.block(path).pop("cache_control", None)

    def pop_top_level(self) -> Any:
        return self.root.pop("cache_control", None)
