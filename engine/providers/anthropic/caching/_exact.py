"""Exact prefix lengths through ``count_tokens``, asked once per prefix.

The local estimate (bytes / 4) is off against the real tokenizer in both
directions: code, non-English text and JSON can take up to ~2.4 times the
estimated tokens. A prefix whose estimate falls in a band around the model's
minimum is therefore asked of the API (free, but a round trip); far from the
minimum the estimate decides. Each answer is kept by prefix hash, so a call
site's shared system prompt is counted once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.providers.anthropic.blocks import Block
from engine.providers.anthropic.capabilities import capabilities
from engine.providers.anthropic.sdk_args import sdk_kwargs

if TYPE_CHECKING:
    import anthropic

__all__ = ["ExactCounts", "prefix_payload", "sdk_counter"]

PLACEHOLDER_TEXT = "."


def prefix_payload(params: dict[str, Any], blocks: list[Block], index: int) -> dict[str, Any]:
    """The request cut after position ``index``, in a shape ``count_tokens`` accepts.

    Markers are left out; a cut inside ``tools`` drops ``system``; a cut before any
    message adds a one-character user turn (``count_tokens`` needs one), which
    overcounts by a token or two: the safe direction for a minimum-length check.
    """
    end = blocks[index]
    out: dict[str, Any] = {"model": params.get("model", "")}
    tools = params.get("tools") or []
    out["tools"] = tools[: int(end.path[1]) + 1] if end.section == "tools" else list(tools)
    if not out["tools"]:
        del out["tools"]
    if end.section != "tools" and params.get("system"):
        system = params["system"]
        cut = end.section == "system" and not isinstance(system, str)
        out["system"] = system[: int(end.path[1]) + 1] if cut else system
    messages: list[Any] = []
    if end.section == "messages":
        m, i = int(end.path[1]), int(end.path[3])
        source = params["messages"]
        messages = list(source[:m])
        content = source[m].get("content")
        last = {**source[m], "content": content if isinstance(content, str) else content[: i + 1]}
        messages.append(last)
    if not messages or messages[0].get("role") != "user":
        messages.insert(0, {"role": "user", "content": PLACEHOLDER_TEXT})
    out["messages"] = messages
    return out


def sdk_counter(client: anthropic.Anthropic) -> Callable[[dict[str, Any]], int]:
    """An ``exact_counter`` for :class:`BreakpointAllocator` backed by ``messages.count_tokens``.

    The API's count includes a fixed per-request overhead that is no part of any
    prefix (the data file's ``request_overhead_tokens``); it is taken off.
    """
    overhead = int(capabilities().limits.get("request_overhead_tokens", 0))

    def count(prefix: dict[str, Any]) -> int:
        count = client.messages.count_tokens
        return max(0, int(count(**sdk_kwargs(count, prefix)).input_tokens) - overhead)

    return count


class ExactCounts:
    """A bounded, thread-safe memo of exact prefix lengths keyed by prefix hash."""

    def __init__(self, counter: Callable[[dict[str, Any]], int], *, size: int = 4096) -> None:
        self._counter = counter
        self._memo: OrderedDict[bytes, int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def count(
        self,
        digest: bytes,
        build: Callable[[], dict[str, Any]],
        counter: Callable[[dict[str, Any]], int] | None = None,
    ) -> int:
        """The memoised count of ``digest``; ``counter`` (default: this memo's own) asks on a miss."""
        with self._lock:
            if digest in self._memo:
                self._memo.move_to_end(digest)
                return self._memo[digest]
        value = int((counter or self._counter)(build()))
        with self._lock:
            self._memo[digest] = value
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return value
