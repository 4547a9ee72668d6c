"""Where the named anchors and the structural reuse points of a request are.

Positions are indices into :func:`~engine.providers.anthropic.blocks.iter_blocks`
(prefix order). An anchor that lands on a block that cannot carry a marker
(thinking, empty text) walks back to the nearest block that can, like the API's
automatic caching does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.providers.anthropic.blocks import Block

__all__ = ["Anchors", "find_anchors"]


@dataclass(frozen=True, slots=True)
class Anchors:
    """Positions (or None when the request has no such block)."""

    tools: int | None
    system: int | None
    history: int | None
    last: int | None
    previous_turn_end: int | None
    growing: bool

    def named(self, name: str) -> int | None:
        value: int | None = getattr(self, name)
        return value

    @property
    def stable(self) -> int | None:
        """The end of the part shared across calls by construction (tools, then system)."""
        return self.system if self.system is not None else self.tools


def _last_markable(blocks: list[Block], upto: int, *, section: str | None = None) -> int | None:
    for i in range(min(upto, len(blocks)) - 1, -1, -1):
        if blocks[i].markable and (section is None or blocks[i].section == section):
            return i
    return None


def _first_block_of_message(blocks: list[Block], message_index: int) -> int:
    for i, block in enumerate(blocks):
        if block.section == "messages" and int(block.path[1]) >= message_index:
            return i
    return len(blocks)


def _last_index(messages: list[Any], role: str, before: int | None = None) -> int | None:
    end = len(messages) if before is None else before
    for m in range(end - 1, -1, -1):
        message = messages[m]
        if isinstance(message, dict) and message.get("role") == role:
            return m
    return None


def find_anchors(params: dict[str, Any], blocks: list[Block]) -> Anchors:
    """Resolve ``tools``, ``system``, ``history``, ``last`` and the previous turn's end.

    ``history`` is the last block before the newest user turn. The previous turn's
    end is where the request one turn earlier ended (the last block before the
    newest assistant turn): what that request's ``last`` marker wrote. A
    conversation is *growing* when an assistant turn precedes the newest user turn.
    """
    messages = params.get("messages") or []
    messages = messages if isinstance(messages, list) else []
    newest_user = _last_index(messages, "user")
    history = previous_end = None
    assistant_before = None
    if newest_user is not None:
        history = _last_markable(blocks, _first_block_of_message(blocks, newest_user), section="messages")
        assistant_before = _last_index(messages, "assistant", before=newest_user)
        if assistant_before is not None:
            previous_end = _last_markable(
                blocks, _first_block_of_message(blocks, assistant_before), section="messages"
            )
    return Anchors(
        tools=_last_markable(blocks, len(blocks), section="tools"),
        system=_last_markable(blocks, len(blocks), section="system"),
        history=history,
        last=_last_markable(blocks, len(blocks)),
        previous_turn_end=previous_end,
        growing=assistant_before is not None,
    )
