"""Documents and invariant checks shared by the store tests."""

from __future__ import annotations

from typing import Any

from engine.store import PolicyStore


def policy_doc(
    name: str = "demo", *, enabled: bool = True, rollout: int = 100, **spec: Any
) -> dict[str, Any]:
    """A valid policy document; ``rollout`` and extra spec fields make distinct revisions."""
    return {
        "apiVersion": "llm-policy/v1",
        "kind": "OptimizationPolicy",
        "metadata": {"name": name},
        "spec": {
            "enabled": enabled,
            "rollout": rollout,
            "defaults": {"cache": {"mode": "off", "ttl": "5m"}},
            **spec,
        },
    }


def assert_invariants(store: PolicyStore, name: str) -> None:
    """Versions 1..N without gaps, exactly one active, head and history agree."""
    history = store.history(name)
    numbers = [v.version for v in history.versions]
    assert numbers == list(range(1, len(numbers) + 1))
    active = [v for v in history.versions if v.active]
    assert len(active) == 1
    assert store.active_revision(name) == (active[0].version, active[0].revision)
    assert store.get(name).version == active[0].version
    assert history.events[-1].to_version == active[0].version
    assert all(1 <= e.version <= len(numbers) for e in history.events)
