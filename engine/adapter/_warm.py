"""Pre-warming shared prefixes before a batch is sent, and logging what that cost.

The batch service calls :func:`warm_items` with a pool's items just before they
become batches. Items that share a cached prefix (their first marker, in tools or
system) are put next to each other (so they land in the same batch), and for
each such group, unless this call site's entry is known to be alive or the warm
would not pay at the site's learned batch hit rate, one ordinary request writes
the prefix at 1h with ``max_tokens: 0``. Each warm is a decision-log record of its
own (its marker's source is ``prewarm``), so ``report`` and ``plan`` see its cost.
Anything that fails here leaves the items as they were (fail open).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.ledger import DecisionRecord, MarkerRecord, PolicyRef, account, prefix_blocks, utc_now
from engine.providers.anthropic.blocks import iter_blocks, prefix_hashes
from engine.providers.anthropic.caching._warm import SharedPrefix, shared_prefix, warm_pays, warm_request
from engine.providers.anthropic.capabilities import capabilities
from engine.providers.anthropic.sdk_args import sdk_kwargs

if TYPE_CHECKING:
    from engine.adapter.engine import PolicyEngine
    from engine.providers.anthropic.batches._inflight import Item

__all__ = ["warm_items"]


async def warm_items(engine: PolicyEngine, items: list[Item]) -> list[Item]:
    """``items`` grouped by shared prefix, after warming each group's prefix where it pays."""
    try:
        caps = capabilities()
        found = [(item, shared_prefix(item.params, caps)) for item in items]
        groups: dict[bytes, list[tuple[Item, SharedPrefix]]] = {}
        for item, shared in found:
            if shared is not None:
                groups.setdefault(shared.digest, []).append((item, shared))
        order = {digest: n for n, digest in enumerate(groups)}
        ordered = sorted(found, key=lambda f: order[f[1].digest] if f[1] is not None else len(order))
        for members in groups.values():
            await _warm_group(engine, members)
        return [item for item, _ in ordered]
    except Exception as exc:  # warming is an optimisation: the batch goes out regardless
        engine.once.warn(f"warm:{type(exc).__name__}", "pre-warming a batch's shared prefix failed: %r", exc)
        return items


async def _warm_group(engine: PolicyEngine, members: list[tuple[Item, SharedPrefix]]) -> None:
    caps = capabilities()
    item, shared = members[0]
    site = item.call_site or "unknown"
    allocator = engine.allocator("direct")
    now = engine.clock()
    if allocator.is_written(site, shared.digest, now):
        return
    info = caps.model(str(item.params.get("model", "")))
    rate = engine.batch_hit_rate(site)
    if not warm_pays(len(members), rate, info.prices, caps.multipliers["batch"]):
        return
    payload = warm_request(item.params, shared)
    if payload is None:
        return
    headers = dict(item.headers)
    create = item.client.messages.create
    message = await create(**sdk_kwargs(create, payload, extra_headers=headers or None))
    allocator.mark_written(site, shared.digest, now, "1h")
    usage = message.usage.model_dump() if message.usage is not None else {}
    engine.log.emit(_record(engine, site, payload, shared, len(members), rate, usage, now), lambda: None)


def _record(
    engine: PolicyEngine,
    site: str,
    payload: dict[str, Any],
    shared: SharedPrefix,
    members: int,
    rate: float,
    usage: dict[str, Any],
    now: float,
) -> DecisionRecord:
    policy = engine.policy
    blocks = iter_blocks(payload)
    path = blocks[shared.index].dotted
    hashes = prefix_hashes(payload, blocks)
    model = str(payload.get("model", ""))
    reason = (
        f"prewarm: {members} batch items share this prefix and none of its entries is known alive; "
        f"at this site's batch hit rate ({rate:.0%}) one 1h write before the batch pays"
    )
    record = DecisionRecord(
        call_site=site,
        call_site_source="code",
        call="ainvoke",
        latency_tolerance="interactive",
        model=model,
        provider="anthropic",
        transport="direct",
        time=utc_now(now),
        policy=None
        if policy is None
        else PolicyRef(policy.name, engine.version, policy.revision, policy.spec.mode, policy.spec.rollout),
        strategy="cache",
        applied=True,
        reasons=["prewarm before a batch (max_tokens 0: only the write is billed)"],
        markers=[MarkerRecord(path, "1h", shared.tokens, "prewarm", "placed", reason, shared.digest.hex())],
        prefix=prefix_blocks(blocks, hashes),
        input_tokens_estimate=sum(b.tokens for b in blocks),
        max_tokens=0,
    )
    if usage:
        record.usage, record.cost = account(model, usage)
        record.output_tokens = record.usage["output_tokens"]
    return record
