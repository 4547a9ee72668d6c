"""The typed policy: frozen pydantic models mirroring ``schemas/policy.v1.json`` field by field.

The schema decides what is valid (and says why not); these models give the rest of the
engine typed, immutable access. A test walks both and proves they agree: the same keys
(camelCase aliases), the same required keys, the same enum values (``Literal`` types) and
the same built-in defaults.

Every setting in ``cache`` / ``batch`` is optional here, because "left out" must stay
distinguishable from "set to the default": a rule's fields are merged over
``spec.defaults``, which are merged over :data:`BUILTIN_DEFAULTS`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from engine.providers.anthropic.tokens import canonical_json

__all__ = [
    "BUILTIN_DEFAULTS",
    "MATCH_FIELDS",
    "BatchSettings",
    "CacheSettings",
    "Defaults",
    "Match",
    "Metadata",
    "Policy",
    "Rule",
    "Spec",
]

CacheMode = Literal["off", "auto", "explicit"]
CacheTTL = Literal["5m", "1h", "auto"]
Breakpoint = Literal["tools", "system", "history", "last"]
BatchMode = Literal["off", "explicit", "accumulate"]
OnFailure = Literal["direct", "error"]
PolicyMode = Literal["enforce", "shadow"]
OnUnsupported = Literal["ignore", "warn", "error"]

Glob = Annotated[str, StringConstraints(min_length=1)]
Globs = Glob | Annotated[tuple[Glob, ...], Field(min_length=1)]
Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(s|m|h)$")]
PolicyName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
RuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]

#: The value of every setting a policy leaves out everywhere (DESIGN.md's example).
BUILTIN_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "cache": {"mode": "off", "ttl": "5m", "breakpoints": []},
    "batch": {
        "mode": "off",
        "maxRequests": 100,
        "maxWait": "30s",
        "deadline": "24h",
        "retries": 3,
        "onFailure": "direct",
    },
}

#: ``match`` keys, in the order traces report them, with the CallContext attribute each reads.
MATCH_FIELDS: Final[dict[str, str]] = {
    "callSite": "call_site",
    "role": "role",
    "provider": "provider",
    "model": "model",
    "org": "org",
}


class _Frozen(BaseModel):
    # Lax by default so ``Policy.model_validate(document)`` takes plain JSON data (lists for
    # tuples); the validator itself calls it with ``strict=True`` after the schema pass.
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class CacheSettings(_Frozen):
    mode: CacheMode | None = None
    ttl: CacheTTL | None = None
    breakpoints: Annotated[tuple[Breakpoint, ...], Field(min_length=1, max_length=4)] | None = None


class BatchSettings(_Frozen):
    mode: BatchMode | None = None
    max_requests: Annotated[int, Field(ge=1, le=100_000)] | None = Field(default=None, alias="maxRequests")
    max_wait: Duration | None = Field(default=None, alias="maxWait")
    deadline: Duration | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    on_failure: OnFailure | None = Field(default=None, alias="onFailure")


class Match(_Frozen):
    call_site: Globs | None = Field(default=None, alias="callSite")
    role: Globs | None = None
    provider: Globs | None = None
    model: Globs | None = None
    org: Globs | None = None

    def globs(self, key: str) -> tuple[str, ...] | None:
        """The globs of a ``match`` key (``"callSite"``) as a tuple, None when left out."""
        value = getattr(self, MATCH_FIELDS[key])
        if value is None:
            return None
        return (value,) if isinstance(value, str) else tuple(value)


class Rule(_Frozen):
    name: RuleName
    description: str | None = None
    match: Match = Field(default_factory=Match)
    cache: CacheSettings | None = None
    batch: BatchSettings | None = None


class Defaults(_Frozen):
    cache: CacheSettings | None = None
    batch: BatchSettings | None = None


class Spec(_Frozen):
    enabled: bool = False
    mode: PolicyMode = "enforce"
    rollout: Annotated[int, Field(ge=0, le=100)] = 100
    on_unsupported: OnUnsupported = Field(default="warn", alias="onUnsupported")
    defaults: Defaults = Field(default_factory=Defaults)
    rules: tuple[Rule, ...] = ()


class Metadata(_Frozen):
    name: PolicyName
    description: str | None = None


class Policy(_Frozen):
    """A valid policy document. Build one with ``load_policy`` / ``load_policy_text``.

    ``document`` is the plain data exactly as written (what a store saves and hashes);
    ``revision`` is the sha256 of its canonical JSON, so equal documents share a revision
    however they were formatted.
    """

    api_version: Literal["llm-policy/v1"] = Field(alias="apiVersion")
    kind: Literal["OptimizationPolicy"]
    metadata: Metadata
    spec: Spec

    _document: dict[str, Any] = PrivateAttr(default_factory=dict)
    _revision: str = PrivateAttr(default="")

    def model_post_init(self, context: Any, /) -> None:
        self._document = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        self._revision = hashlib.sha256(canonical_json(self._document).encode("utf-8")).hexdigest()

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def document(self) -> dict[str, Any]:
        """A fresh copy of the document as written: callers may keep or change it freely."""
        copied: dict[str, Any] = _copy_json(self._document)
        return copied

    @property
    def revision(self) -> str:
        return self._revision

    def to_yaml(self) -> str:
        """The document as YAML that ``load_policy_text`` reads back to the same revision."""
        return yaml.dump(self._document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _copy_json(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, scalars), faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Quotes every string the policy loader (YAML 1.2 core) would read as something else.

    SafeDumper already quotes what YAML 1.1 would misread (``off``, ``yes``); adding the
    core schema's number forms (``0o17``) makes the output safe for both readers.
    """


_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7]+$"), list("0"))
