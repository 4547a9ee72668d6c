"""The store's own gate: nothing reaches a backend without passing the policy validator.

Commands validate the file first (so errors point at its lines); this second pass
is what stops a caller that hands the store a dict directly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from engine.store._errors import InvalidPolicyError

__all__ = ["ValidPolicy", "document_yaml", "validate_document"]

SOURCE = "<document>"


@dataclass(frozen=True)
class ValidPolicy:
    name: str
    document: dict[str, Any]
    revision: str


@dataclass(frozen=True)
class _ShapeIssue:
    """Stands in for a validator issue when the value is not even JSON data."""

    message: str
    code: str = "not-json"

    def format(self) -> str:
        return f"{SOURCE}:1:1: {self.code}: {self.message}"


class _Dumper(yaml.SafeDumper):
    """SafeDumper quotes what YAML 1.1 misreads (``off``, ``yes``); the policy loader
    reads YAML 1.2 core, whose octal form ``0o17`` must be quoted as well."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7]+$"), list("0"))


def document_yaml(document: dict[str, Any]) -> str:
    """The YAML a person reads (``show``, ``diff``): keys in stored order, every string
    quoted where needed so that loading the text back gives the same document."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def validate_document(document: Any) -> ValidPolicy:
    """Validate a policy given as data; raise :class:`InvalidPolicyError` with the
    validator's issues when it does not pass."""
    from engine.policy import check_text

    if not isinstance(document, dict):
        raise InvalidPolicyError(
            SOURCE, [_ShapeIssue(f"a policy is a mapping, got {type(document).__name__}")], []
        )
    try:
        plain = json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidPolicyError(
            SOURCE, [_ShapeIssue(f"the document is not plain JSON data: {exc}")], []
        ) from exc
    report = check_text(document_yaml(plain), source=SOURCE)
    if report.errors or report.policy is None:
        raise InvalidPolicyError(SOURCE, list(report.errors), list(report.warnings))
    policy = report.policy
    return ValidPolicy(name=policy.name, document=policy.document, revision=policy.revision)
