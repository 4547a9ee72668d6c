"""Properties of the breakpoint allocator on generated payloads.

Whatever the caller sends (tools, system as a string or blocks, multi-turn
conversations with tool_use / tool_result, images, thinking, the caller's own
markers, valid or not), what the allocator returns must be something the API
accepts and must say the same thing as the input.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.decision import CachePlan
from engine.providers.anthropic.blocks import iter_blocks
from engine.providers.anthropic.caching import BreakpointAllocator

from .payloads import payloads

plans = st.one_of(
    st.builds(CachePlan, st.just("auto"), st.sampled_from(["5m", "1h", "auto"])),
    st.builds(
        CachePlan,
        st.just("explicit"),
        st.sampled_from(["5m", "1h", "auto"]),
        st.lists(st.sampled_from(["tools", "system", "history", "last"]), unique=True).map(tuple),
    ),
    st.just(CachePlan("off")),
)
transports = st.sampled_from(["direct", "custom", "bedrock"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _markers(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (b.dotted, (b.cache_control or {}).get("ttl", "5m")) for b in iter_blocks(payload) if b.cache_control
    ]


def _content_only(value: Any) -> Any:
    """The payload with markers removed and string forms written as one text block."""
    if isinstance(value, dict):
        out = {k: _content_only(v) for k, v in value.items() if k != "cache_control"}
        for key in ("system", "content"):
            if isinstance(out.get(key), str) and out[key]:
                out[key] = [{"type": "text", "text": out[key]}]
        return out
    if isinstance(value, list):
        return [_content_only(v) for v in value]
    return value


@FAST
@given(payloads(), plans, transports, st.booleans())
def test_output_is_valid_and_faithful(
    payload: dict[str, Any], plan: CachePlan, transport: str, batch: bool
) -> None:
    original = copy.deepcopy(payload)
    result = BreakpointAllocator(transport=transport).apply(  # type: ignore[arg-type]
        payload, plan, call_site="prop", now=100.0, batch=batch
    )
    out = result.payload
    assert payload == original, "the input was mutated"
    found = _markers(out)
    assert len(found) <= 4
    ttls = [ttl for _, ttl in found]
    assert "1h" not in ttls[ttls.index("5m") :] if "5m" in ttls else True, f"1h after 5m: {found}"
    assert "cache_control" not in out, "the top-level marker must become a block marker"
    assert all(b.markable for b in iter_blocks(out) if b.cache_control), "marker on an unmarkable block"
    assert _content_only(out) == _content_only(original), "content other than markers changed"


@FAST
@given(payloads(), plans, transports, st.booleans())
def test_idempotent(payload: dict[str, Any], plan: CachePlan, transport: str, batch: bool) -> None:
    allocator = BreakpointAllocator(transport=transport)  # type: ignore[arg-type]
    once = allocator.apply(payload, plan, call_site="prop", now=100.0, batch=batch).payload
    twice = allocator.apply(once, plan, call_site="prop", now=100.0, batch=batch).payload
    assert twice == once


@FAST
@given(payloads(), plans)
def test_string_forms_convert_only_where_a_marker_goes(payload: dict[str, Any], plan: CachePlan) -> None:
    out = BreakpointAllocator().apply(payload, plan, call_site="prop", now=5.0).payload
    if isinstance(payload.get("system"), str) and not isinstance(out.get("system"), str):
        assert out["system"][0].get("cache_control"), "system converted without a marker on it"
    for before, after in zip(payload["messages"], out["messages"], strict=True):
        if isinstance(before["content"], str) and not isinstance(after["content"], str):
            assert after["content"][0].get("cache_control"), "content converted without a marker on it"


@FAST
@given(payloads(), plans)
def test_every_placement_names_a_real_block(payload: dict[str, Any], plan: CachePlan) -> None:
    result = BreakpointAllocator().apply(payload, plan, call_site="prop", now=5.0)
    paths = {b.dotted for b in iter_blocks(result.payload)} | {b.dotted for b in iter_blocks(payload)}
    for placement in result.placements:
        assert placement.path in paths
        assert placement.reason
        assert len(placement.prefix_hash) == 64


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(payloads(), plans)
def test_the_emulator_accepts_every_marker_layout(
    emulator: Any, payload: dict[str, Any], plan: CachePlan
) -> None:
    """Whatever else the emulator objects to in a generated payload, it is never the markers."""
    import anthropic

    out = BreakpointAllocator().apply(payload, plan, call_site="prop", now=5.0).payload
    with anthropic.Anthropic(api_key="sk-prop", base_url=emulator.base_url, max_retries=0) as sdk:
        try:
            sdk.messages.create(**out)
        except anthropic.BadRequestError as exc:
            assert "cache_control" not in exc.message, exc.message


@FAST
@given(payloads(), plans, transports)
def test_valid_caller_markers_are_all_kept(payload: dict[str, Any], plan: CachePlan, transport: str) -> None:
    before = [b for b in iter_blocks(payload) if b.cache_control]
    ttls = [(b.cache_control or {}).get("ttl", "5m") for b in before]
    valid = (
        "cache_control" not in payload
        and len(before) <= 4
        and all(b.markable for b in before)
        and ("5m" not in ttls or "1h" not in ttls[ttls.index("5m") :])
    )
    if not valid:
        return
    out = BreakpointAllocator(transport=transport).apply(payload, plan, call_site="p", now=1.0)  # type: ignore[arg-type]
    after = {b.dotted: b.cache_control for b in iter_blocks(out.payload) if b.cache_control}
    for block in before:
        assert after.get(block.dotted) == block.cache_control, f"caller marker at {block.dotted} changed"
