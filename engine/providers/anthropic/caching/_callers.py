"""The caller's own markers: kept and counted, repaired only where the API would refuse them.

PipesHub's agent transport already marks its system block and large tool results;
those markers are the caller's decision and stay. What the API would reject is
repaired, with the reason logged: a marker on a block that cannot carry one is
removed; past the 4-marker limit the earliest extras go (later markers end longer
prefixes and cover more of the lookback); a 1h marker after a 5m one, or a 1h
marker the transport or model does not take, becomes 5m. A top-level
``cache_control`` (automatic caching) becomes the block marker it stands for, on
the last cacheable block, so every transport accepts it and it is counted.
"""

from __future__ import annotations

from typing import Any

from engine.providers.anthropic.caching._edit import PayloadEditor
from engine.providers.anthropic.caching._request import RequestView
from engine.providers.anthropic.caching._types import TTL, Action, Placement, Source

__all__ = ["Ledger", "normalize_caller_markers", "ttl_of"]

TOP_LEVEL_REASON = "top-level automatic caching, written as the block marker it stands for (last block)"


def ttl_of(marker: dict[str, Any]) -> TTL:
    return "1h" if marker.get("ttl") == "1h" else "5m"


class Ledger:
    """Markers in force (position -> ttl), and the log of what was decided."""

    def __init__(self, view: RequestView) -> None:
        self.view = view
        self.markers: dict[int, TTL] = {}
        self.caller: set[int] = set()
        #: Exact prefix lengths ``count_tokens`` gave for positions the engine considered.
        self.counted: dict[int, int] = {}
        self.placements: list[Placement] = []
        self.notes: list[str] = []

    def log(
        self, index: int, ttl: TTL, source: Source, action: Action, reason: str, tokens: int | None = None
    ) -> None:
        self.placements.append(
            Placement(
                path=self.view.path(index),
                ttl=ttl,
                prefix_tokens=self.view.prefix_tokens[index] if tokens is None else tokens,
                source=source,
                action=action,
                reason=reason,
                prefix_hash=self.view.hex(index),
            )
        )

    def earlier_5m(self, index: int) -> int | None:
        return next((i for i in sorted(self.markers) if i < index and self.markers[i] == "5m"), None)

    def later_1h(self, index: int) -> int | None:
        return next((i for i in sorted(self.markers) if i > index and self.markers[i] == "1h"), None)


def _found_markers(view: RequestView, editor: PayloadEditor, ledger: Ledger) -> dict[int, dict[str, Any]]:
    found = {i: dict(b.cache_control) for i, b in enumerate(view.blocks) if b.cache_control is not None}
    top = view.params.get("cache_control")
    if "cache_control" not in view.params:
        return found
    editor.pop_top_level()
    last = view.anchors.last
    if isinstance(top, dict) and last is not None and last not in found:
        editor.set_marker(view.blocks[last].path, top)
        found[last] = dict(top)
    else:
        why = "the last cacheable block already has a marker" if last is not None else "nothing is cacheable"
        ledger.notes.append(f"dropped the top-level cache_control: {why}")
    return found


def _drop_unmarkable(
    view: RequestView, editor: PayloadEditor, ledger: Ledger, found: dict[int, dict[str, Any]]
) -> list[int]:
    valid = []
    for i in sorted(found):
        block = view.blocks[i]
        if block.markable:
            valid.append(i)
            continue
        editor.remove_marker(block.path)
        what = "an empty text block" if block.type == "text" else f"a {block.type or 'typeless'} block"
        ledger.log(i, ttl_of(found[i]), "caller", "dropped", f"{what} cannot carry cache_control")
    return valid


def normalize_caller_markers(view: RequestView, editor: PayloadEditor, ledger: Ledger) -> None:
    """Record the caller's markers in ``ledger``, repairing what the API would reject."""
    last = view.anchors.last
    converted = (
        isinstance(view.params.get("cache_control"), dict)
        and last is not None
        and view.blocks[last].cache_control is None
    )
    top_index = last if converted else None
    found = _found_markers(view, editor, ledger)
    valid = _drop_unmarkable(view, editor, ledger, found)
    excess = max(0, len(valid) - view.max_markers)
    for i in valid[:excess]:
        editor.remove_marker(view.blocks[i].path)
        ledger.log(
            i,
            ttl_of(found[i]),
            "caller",
            "dropped",
            f"more than {view.max_markers} markers (the API refuses the request): kept the last ones",
        )
    first_5m: int | None = None
    for i in valid[excess:]:
        ttl = ttl_of(found[i])
        action: Action = "kept"
        reason = TOP_LEVEL_REASON if i == top_index else "the caller's marker"
        if ttl == "1h" and (not view.allows_1h or first_5m is not None):
            why = (
                view.why_no_1h()
                if not view.allows_1h
                else f"a 1h marker may not follow the 5m marker at {view.path(first_5m or 0)}"
            )
            ttl, action, reason = "5m", "downgraded", f"the caller's 1h marker made 5m: {why}"
            editor.set_marker(view.blocks[i].path, {**found[i], "ttl": "5m"})
        if ttl == "5m" and first_5m is None:
            first_5m = i
        ledger.markers[i] = ttl
        ledger.caller.add(i)
        ledger.log(i, ttl, "caller", action, reason)
