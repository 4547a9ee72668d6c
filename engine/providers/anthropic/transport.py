"""What a transport (and a model) can take, and what happens when a rule asks for more.

Claude is reached three ways in PipesHub: the direct API (``anthropic``), a custom
``base_url`` (``azureAI``), Bedrock (``bedrock``); Vertex is the fourth. Only the
direct API takes Message Batches and top-level automatic caching; all take block
markers. The table is data (``transports`` in ``engine/data/anthropic.yaml``).

When a decision asks for what the transport or model lacks, the policy's
``onUnsupported`` says what to do:

- ``ignore``: drop or weaken the strategy silently (the messages still go to the
  decision log);
- ``warn``: the same, logged once per policy, rule, transport, model and feature
  (not once per call);
- ``error``: raise :class:`UnsupportedError`, naming the rule and what is missing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from engine.decision import BatchPlan, CachePlan, Decision, Strategy
from engine.providers.anthropic.capabilities import Capabilities, Transport, capabilities

__all__ = ["SupportResult", "UnsupportedError", "check_support", "transport_for_provider"]

logger = logging.getLogger("llm_policy.transport")

_PROVIDER_TRANSPORT: dict[str, Transport] = {
    "anthropic": "direct",
    "azureAI": "custom",
    "bedrock": "bedrock",
    "vertexAI": "vertex",
}
#: The host's provider strings that can reach Claude: the only ones the engine touches.
CLAUDE_PROVIDERS = frozenset(_PROVIDER_TRANSPORT)


class UnsupportedError(Exception):
    """A rule asks for a strategy its transport or model cannot take (``onUnsupported: error``)."""


@dataclass(frozen=True, slots=True)
class SupportResult:
    """The plans that can actually be applied, and what was changed and why."""

    cache: CachePlan | None
    batch: BatchPlan | None
    strategy: Strategy
    transport: Transport
    messages: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.messages)


def transport_for_provider(provider: str | None, base_url: str | None = None) -> Transport:
    """The transport of a PipesHub provider string.

    ``anthropic`` with a ``base_url`` is still the direct API (a proxy or the
    emulator speaks it in full); ``azureAI`` is a custom endpoint whatever its URL.
    Unknown providers are treated as ``custom``: block markers only, the safe side.
    """
    return _PROVIDER_TRANSPORT.get(provider or "anthropic", "custom")


_warned: set[tuple[str, ...]] = set()
_warned_lock = threading.Lock()


def _strategy(cache: CachePlan | None, batch: BatchPlan | None) -> Strategy:
    if cache is not None and batch is not None:
        return "batch+cache"
    if batch is not None:
        return "batch"
    return "cache" if cache is not None else "direct"


def _check_batch(batch: BatchPlan, caps: Capabilities, transport: Transport, model: str) -> str | None:
    if batch.mode == "off":
        return None
    if not caps.transport(transport).batches:
        return f"the {transport} transport takes no Message Batches: sending direct"
    if not caps.model(model).batches:
        return f"model {model!r} takes no Message Batches: sending direct"
    return None


def _check_cache(
    cache: CachePlan, caps: Capabilities, transport: Transport, model: str
) -> tuple[CachePlan | None, str | None]:
    if cache.mode == "off":
        return cache, None
    if not caps.transport(transport).block_markers:
        return None, f"the {transport} transport takes no cache markers: caching off"
    if cache.ttl == "1h" and not caps.transport(transport).ttl_1h:
        return replace(cache, ttl="5m"), f"the {transport} transport takes no 1h cache TTL: using 5m"
    if cache.ttl == "1h" and not caps.model(model).ttl_1h:
        return replace(cache, ttl="5m"), f"model {model!r} takes no 1h cache TTL: using 5m"
    return cache, None


def _report(
    decision: Decision, caps: Capabilities, transport: Transport, model: str, messages: list[str]
) -> None:
    where = f"policy {decision.policy_name!r}, rule {decision.rule or '(defaults)'!r}"
    if decision.on_unsupported == "error":
        raise UnsupportedError(f"{where}: " + "; ".join(messages) + " (onUnsupported: error)")
    if decision.on_unsupported != "warn":
        return
    family = caps.model(model).family if model else ""
    for message in messages:
        key = (decision.policy_name, decision.rule or "", transport, family, message)
        with _warned_lock:
            if key in _warned:
                continue
            _warned.add(key)
        logger.warning("%s: %s (logged once; set onUnsupported: ignore to silence)", where, message)


def check_support(
    decision: Decision, *, transport: Transport, model: str, caps: Capabilities | None = None
) -> SupportResult:
    """The decision's plans cut down to what ``transport`` and ``model`` take, per ``onUnsupported``."""
    caps = caps or capabilities()
    messages: list[str] = []
    batch = decision.batch
    if batch is not None and (why := _check_batch(batch, caps, transport, model)) is not None:
        batch = None
        messages.append(why)
    cache = decision.cache
    if cache is not None:
        cache, why = _check_cache(cache, caps, transport, model)
        if why is not None:
            messages.append(why)
    if messages:
        _report(decision, caps, transport, model, messages)
    batch = batch if batch is None or batch.mode != "off" else None
    cache = cache if cache is None or cache.mode != "off" else None
    return SupportResult(cache, batch, _strategy(cache, batch), transport, tuple(messages))
