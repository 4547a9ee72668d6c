"""The policy language: load (YAML with line marks), validate (schema, then semantics), model.

::

    policy = load_policy("policies/examples/indexing.yaml")   # raises PolicyError
    report = check_text(text, source="inline.yaml")            # never raises; report.errors
"""

from engine.policy._check import check_paths, check_text, load_policy, load_policy_text
from engine.policy._errors import CODES, Issue, PolicyError, Report
from engine.policy._model import (
    BUILTIN_DEFAULTS,
    BatchSettings,
    CacheSettings,
    Defaults,
    Match,
    Metadata,
    Policy,
    Rule,
    Spec,
)
from engine.policy._schema import schema

__all__ = [
    "BUILTIN_DEFAULTS",
    "CODES",
    "BatchSettings",
    "CacheSettings",
    "Defaults",
    "Issue",
    "Match",
    "Metadata",
    "Policy",
    "PolicyError",
    "Report",
    "Rule",
    "Spec",
    "check_paths",
    "check_text",
    "load_policy",
    "load_policy_text",
    "schema",
]
