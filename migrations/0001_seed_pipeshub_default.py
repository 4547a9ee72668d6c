"""0001: create what the store needs, then seed ``pipeshub-default`` (disabled).

Never overwrites: if the policy already has any version (an admin published one, or
another ``migrate`` ran at the same moment), it is left exactly as it is. The seed is
published with ``expected_version=0``, so that check and the write are one atomic step.
"""

from __future__ import annotations

from engine._resources import resource_path
from engine.policy import load_policy
from engine.store import ConflictError, PolicyStore

DESCRIPTION = "create the store's collection and indexes; seed pipeshub-default (disabled)"
SEED = "policies/pipeshub-default.yaml"
AUTHOR = "migration 0001"


def apply(store: PolicyStore, *, dry_run: bool) -> list[str]:
    policy = load_policy(resource_path(SEED))
    if policy.document["spec"].get("enabled", False) is not False:
        raise ValueError(
            f"{SEED} must be disabled (spec.enabled: false): the seed never switches the engine on"
        )
    name = policy.name
    existing = store.active_revision(name)
    if dry_run:
        seed = (
            f"leave {name} as is (version {existing[0]} active)"
            if existing
            else f"seed {name} version 1, disabled"
        )
        return [f"ensure the store's schema ({store.url})", seed]
    store.ensure_schema()
    if existing is not None:
        return [f"schema ready; {name} already published (version {existing[0]} active): left as is"]
    try:
        result = store.publish(
            policy.document, author=AUTHOR, comment=f"seeded from {SEED}, disabled", expected_version=0
        )
    except ConflictError as exc:
        return [f"schema ready; {name} was published meanwhile (version {exc.version}): left as is"]
    return [
        f"schema ready; seeded {name} version {result.version} (revision {result.revision[:12]}), disabled"
    ]
