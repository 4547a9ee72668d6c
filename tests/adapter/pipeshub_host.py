"""Load the PipesHub stand-in (tests/pipeshub_standin/app) with a given engine in force.

PipesHub's integration line sits at the end of ``app/utils/aimodels.py`` and every other
module imports the wrapped name from there, so the stand-in is imported afresh, after
the engine is set where the host builds it (``app.config.llm_policy.POLICY_ENGINE``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from engine.adapter import PolicyEngine

STANDIN = Path(__file__).resolve().parents[1] / "pipeshub_standin"


def standin_on_path() -> None:
    if str(STANDIN) not in sys.path:
        sys.path.insert(0, str(STANDIN))


def load_host(engine: PolicyEngine) -> dict[str, ModuleType]:
    """Every stand-in module, imported with ``engine`` as the host's ``POLICY_ENGINE``."""
    standin_on_path()
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]
    config = importlib.import_module("app.config.llm_policy")
    config.POLICY_ENGINE = engine
    modules = {}
    for path in sorted((STANDIN / "app").rglob("*.py")):
        parts = path.relative_to(STANDIN).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = importlib.import_module(name)
    return modules
