"""A local Anthropic-compatible API server: the yardstick for tests, demos and costs.

Public surface: :func:`run_emulator` (a real server in a background thread),
:func:`build_app` (the ASGI app), :class:`EmulatorState`, :class:`EmulatorConfig`,
:class:`ApiError`. See docs/emulator.md for what is and is not emulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ApiError", "EmulatorConfig", "EmulatorState", "build_app", "run_emulator"]

if TYPE_CHECKING:
    from engine.emulator.app import build_app
    from engine.emulator.config import EmulatorConfig
    from engine.emulator.errors import ApiError
    from engine.emulator.server import run_emulator
    from engine.emulator.state import EmulatorState

_WHERE = {
    "ApiError": "engine.emulator.errors",
    "EmulatorConfig": "engine.emulator.config",
    "EmulatorState": "engine.emulator.state",
    "build_app": "engine.emulator.app",
    "run_emulator": "engine.emulator.server",
}


def __getattr__(name: str) -> Any:
    """Import lazily: ``engine.emulator.errors`` stays cheap to import for plug-ins."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
