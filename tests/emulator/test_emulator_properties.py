"""Property tests (hypothesis) on the emulator core, without HTTP: invariants that must
hold for any request, not just the hand-picked ones."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.emulator.errors import ApiError
from engine.emulator.schema_instance import instance
from engine.emulator.state import EmulatorState
from engine.providers.anthropic.capabilities import capabilities

MODEL = "claude-opus-5"  # the smallest minimum (512), so caching happens often
LIMIT = int(capabilities().limits["max_cache_markers"])

blocks = st.lists(
    st.tuples(st.integers(1, 400), st.sampled_from([None, None, "5m", "1h"]), st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


def _request(spec: list[tuple[int, str | None, int]], question: str) -> dict[str, Any]:
    system = []
    for i, (tokens, ttl, variant) in enumerate(spec):
        b: dict[str, Any] = {"type": "text", "text": f"{i}:{variant}:".ljust(tokens * 4, "x")}
        if ttl:
            b["cache_control"] = {"type": "ephemeral", "ttl": ttl}
        system.append(b)
    return {
        "model": MODEL,
        "max_tokens": 8,
        "system": system,
        "messages": [{"role": "user", "content": question}],
    }


def _valid(spec: list[tuple[int, str | None, int]]) -> bool:
    """At most LIMIT markers, and no 1h marker after a 5m one."""
    ttls = [t for _, t, _ in spec if t]
    if len(ttls) > LIMIT:
        return False
    return not ("5m" in ttls and "1h" in ttls[ttls.index("5m") :])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(blocks, st.sampled_from(["a", "b"])), min_size=1, max_size=5))
def test_usage_always_splits_the_counted_total(sequence: list[tuple[list[Any], str]]) -> None:
    state = EmulatorState()
    for spec, question in sequence:
        params = _request(spec, question)
        if not _valid(spec):
            try:
                state.run_message("k", params)
            except ApiError as err:
                assert err.status == 400
                continue
            raise AssertionError("an invalid marker layout was accepted")
        u = state.run_message("k", params)["usage"]
        total = state.count_tokens({k: v for k, v in params.items() if k != "max_tokens"})["input_tokens"]
        assert u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"] == total
        creation = u["cache_creation"]
        assert (
            creation["ephemeral_5m_input_tokens"] + creation["ephemeral_1h_input_tokens"]
            == u["cache_creation_input_tokens"]
        )
        if not any(t for _, t, _ in spec):
            assert u["cache_read_input_tokens"] == u["cache_creation_input_tokens"] == 0


scalars = st.sampled_from(
    [
        {"type": "string"},
        {"type": "string", "minLength": 5, "maxLength": 9},
        {"type": "string", "format": "date"},
        {"type": "integer", "minimum": -3, "maximum": 40},
        {"type": "number", "exclusiveMinimum": 2},
        {"type": "boolean"},
        {"type": "null"},
        {"enum": ["x", 3, None]},
        {"const": {"k": 1}},
        {"type": ["string", "null"]},
    ]
)
schemas = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(
            lambda props, extra: {
                "type": "object",
                "properties": props,
                "required": sorted(props),
                "additionalProperties": extra,
            },
            st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=3),
            st.booleans(),
        ),
        st.builds(lambda item, n: {"type": "array", "items": item, "minItems": n}, inner, st.integers(0, 3)),
        st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(schemas, st.text(max_size=20))
def test_schema_instances_validate(schema: dict[str, Any], seed: str) -> None:
    jsonschema.validate(instance(schema, seed), schema)
