"""llm-policy: declarative caching and batching policies for Claude calls.

The public surface is small::

    policy = load_policy("policies/examples/indexing.yaml")
    compiled = compile_policy(policy)            # once
    decision = evaluate(compiled, CallContext(call_site="indexing.table_rows"))  # per call

    engine = PolicyEngine.from_file("policies/examples/indexing.yaml")
    get_generator_model = wrap_factory(get_generator_model, engine)

Names are imported on first use, so ``import engine`` stays cheap on the hot path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.adapter import PolicyEngine, wrap_factory
    from engine.compile import CompiledPolicy, compile_policy
    from engine.decision import BatchPlan, CachePlan, CallContext, Decision, TraceStep
    from engine.evaluate import evaluate
    from engine.policy import Policy, PolicyError, load_policy, load_policy_text

__all__ = [
    "BatchPlan",
    "CachePlan",
    "CallContext",
    "CompiledPolicy",
    "Decision",
    "Policy",
    "PolicyEngine",
    "PolicyError",
    "TraceStep",
    "compile_policy",
    "evaluate",
    "load_policy",
    "load_policy_text",
    "wrap_factory",
]

_WHERE = {
    "BatchPlan": "engine.decision",
    "CachePlan": "engine.decision",
    "CallContext": "engine.decision",
    "Decision": "engine.decision",
    "TraceStep": "engine.decision",
    "CompiledPolicy": "engine.compile",
    "compile_policy": "engine.compile",
    "evaluate": "engine.evaluate",
    "Policy": "engine.policy",
    "PolicyError": "engine.policy",
    "load_policy": "engine.policy",
    "load_policy_text": "engine.policy",
    "PolicyEngine": "engine.adapter",
    "wrap_factory": "engine.adapter",
}


# ``engine.evaluate`` is both a submodule and a function: once the submodule is imported, Python
# binds the package attribute to the module, shadowing the lazy lookup below. Importing the
# function eagerly (the module needs only engine.decision) makes ``engine.evaluate`` the function.
from engine.evaluate import evaluate  # noqa: E402


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
