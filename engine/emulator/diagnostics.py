"""Cache-miss diagnostics: why a request could not reuse the prefix of an earlier one.

A request that names ``diagnostics.previous_message_id`` (ANTHROPIC.md, "Later facts")
gets ``diagnostics.cache_miss_reason`` in its response, in the official SDK's shapes:
``model_changed`` (model or ``speed``), ``tools_changed``, ``system_changed``,
``messages_changed`` (an earlier entry differs, not only entries appended), each with
``cache_missed_input_tokens``; ``previous_message_not_found``; and ``unavailable``
when the API can give no diagnosis: other prompt-affecting settings differ
(``thinking``, ``tool_choice``, effort), or nothing changed yet nothing was read (the
entry's TTL ran out, or the prefix is below the model's minimum). ``diagnostics:
null`` when no divergence was found (or ``previous_message_id`` is null: opting in
on a first turn).

Fingerprints of recent responses are kept per API key, bounded.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from engine.emulator.errors import invalid_request
from engine.emulator.validate import Prepared

__all__ = ["Diagnoser", "Fingerprint", "check_diagnostics"]

_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What of a request decides whether its prefix can be reused."""

    model: str
    tools: bytes
    system: bytes
    messages: tuple[bytes, ...]
    settings: bytes
    cacheable: int  # tokens this request read or wrote: what a follower could have read

    @classmethod
    def of(cls, req: Prepared, cacheable: int) -> Fingerprint:
        def digest(section: str) -> bytes:
            h = hashlib.sha256()
            for block in req.blocks:
                if block.section == section and not block.stripped:
                    h.update(block.digest)
            return h.digest()

        p = req.params
        config = p.get("output_config") if isinstance(p.get("output_config"), dict) else {}
        settings = repr((p.get("thinking"), p.get("tool_choice"), (config or {}).get("effort")))
        return cls(
            model=f"{req.info.family}/{req.model if not req.info.known else ''}/{p.get('speed')}",
            tools=digest("tools"),
            system=digest("system"),
            messages=tuple(b.digest for b in req.blocks if b.section == "messages" and not b.stripped),
            settings=hashlib.sha256(settings.encode()).digest(),
            cacheable=cacheable,
        )


def check_diagnostics(params: dict[str, Any]) -> str | bool | None:
    """The named previous message id (None: opted in without one; False: not asked)."""
    if "diagnostics" not in params or params["diagnostics"] is None:
        return False
    value = params["diagnostics"]
    if not isinstance(value, dict) or set(value) - {"previous_message_id"}:
        raise invalid_request("diagnostics: Input should be an object with previous_message_id")
    previous = value.get("previous_message_id")
    if previous is not None and not isinstance(previous, str):
        raise invalid_request("diagnostics.previous_message_id: Input should be a valid string")
    return previous


class Diagnoser:
    """Recent fingerprints by message id, and the reason a new request missed."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], Fingerprint] = OrderedDict()

    def remember(self, api_key: str, message_id: str, fingerprint: Fingerprint) -> None:
        self._seen[(api_key, message_id)] = fingerprint
        while len(self._seen) > _KEEP:
            self._seen.popitem(last=False)

    def reason(self, api_key: str, previous_id: str, now: Fingerprint, read: int) -> dict[str, Any] | None:
        before = self._seen.get((api_key, previous_id))
        if before is None:
            return {"type": "previous_message_not_found"}
        missed = max(0, before.cacheable - read)
        for kind, changed in (
            ("model_changed", before.model != now.model),
            ("tools_changed", before.tools != now.tools),
            ("system_changed", before.system != now.system),
        ):
            if changed:
                return {"type": kind, "cache_missed_input_tokens": missed}
        if before.settings != now.settings:
            return {"type": "unavailable"}
        if now.messages[: len(before.messages)] != before.messages:
            return {"type": "messages_changed", "cache_missed_input_tokens": missed}
        if read == 0 and before.cacheable > 0:
            return {"type": "unavailable"}  # same prefix, nothing read: TTL ran out or below the minimum
        return None
