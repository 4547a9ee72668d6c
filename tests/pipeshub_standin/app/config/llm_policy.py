"""Where the stand-in host builds its one engine per process (tests set ``POLICY_ENGINE``)."""

from __future__ import annotations

from engine import PolicyEngine

POLICY_ENGINE: PolicyEngine = PolicyEngine.disabled()
