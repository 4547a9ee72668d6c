"""``llm-policy enable NAME``: undo the kill switch. Publishes and activates a copy of the
active version with ``spec.enabled: true``.

Already enabled: nothing changes. Like ``disable``, it prints the version now active,
exits 1 (after the change) when NAME is not the policy the engine loads, and 4 when
the store is unreachable. ``--format json``: the same object as ``disable``.
"""

from __future__ import annotations

from typing import Any

from engine.cli.disable import register_switch

__all__ = ["register"]


def register(subparsers: Any) -> None:
    register_switch(subparsers, "enable", "switch a policy on (publishes a copy with enabled: true)", __doc__)
