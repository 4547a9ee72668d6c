"""Calls the host sends past the engine, made visible.

PipesHub's agent loop has a second transport (``PIPESHUB_AGENT_TRANSPORT=direct``): it
takes any model whose class is named ``ChatAnthropic`` (a wrapped model is one), reads its
settings and talks through its own ``anthropic.AsyncAnthropic`` client, setting
``cache_control`` itself. Those calls never reach LangChain, so the policy cannot apply
to them. That is the host's choice and it stays so; the engine says it once: one
warning, and one decision-log record marked ``bypass: direct-transport``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from engine.adapter.callsite import code_location
from engine.ledger import DecisionRecord

if TYPE_CHECKING:
    from engine.adapter._call import Binding
    from engine.adapter.engine import PolicyEngine

__all__ = ["DIRECT_TRANSPORT_ENV", "direct_transport_on", "note_direct_transport"]

logger = logging.getLogger("engine.adapter")

DIRECT_TRANSPORT_ENV = "PIPESHUB_AGENT_TRANSPORT"
_KEY = "bypass:direct-transport"


def direct_transport_on() -> bool:
    return os.environ.get(DIRECT_TRANSPORT_ENV, "").strip().lower() == "direct"


def note_direct_transport(engine: PolicyEngine, binding: Binding, model: Any) -> None:
    """Warn and log once per engine when the host's direct agent transport is on."""
    try:
        if not direct_transport_on() or not engine.once.first(_KEY):
            return
        logger.warning(
            "%s=direct: the agent loop sends its Claude calls through its own anthropic client, "
            "past the engine; the policy does not apply to them (indexing and chat are unaffected)",
            DIRECT_TRANSPORT_ENV,
        )
        record = DecisionRecord(
            call_site=code_location(),
            call_site_source="code",
            call="ainvoke",
            latency_tolerance="awaitable",
            model=str(getattr(model, "model", "") or "unknown"),
            provider=binding.provider,
            transport=binding.transport,
            role=binding.role or binding.built_role,
            reasons=[f"{DIRECT_TRANSPORT_ENV}=direct: agent calls bypass the policy"],
            bypass="direct-transport",
        )
        engine.log.emit(record)
    except Exception as exc:  # visibility only: never fails the host's model build
        engine.once.warn(f"bypass:{type(exc).__name__}", "direct transport note failed: %r", exc)
