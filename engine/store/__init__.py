"""Versioned policies: publish, activate, roll back, watch; SQLite, ArangoDB, Redis or etcd.

::

    store = open_store()                       # $LLM_POLICY_STORE, else ./.llm-policy/policies.db
    result = store.publish(policy.document, author="ana", comment="cache indexing 1h")
    store.get("pipeshub-default")              # the active version
    store.rollback("pipeshub-default", 3, author="ana")
    watch = store.watch("pipeshub-default", on_new_version, interval=5.0, known=(4, rev))

URLs: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
``arangodb://user:pass@host:8529/db`` (parts left out come from ``ARANGO_URL``,
``ARANGO_USERNAME``, ``ARANGO_PASSWORD``, ``ARANGO_DB``), ``redis://:pass@host:6379/0``,
``etcd://host:2379`` (PipesHub's key-value store; keys under ``/services/aiconfigs/llm-policy``).
Passwords never appear in ``repr``, messages or logs: ``store.url`` is the masked form.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from engine.store._diff import diff_versions
from engine.store._errors import (
    ConflictError,
    DamagedRecordError,
    InvalidPolicyError,
    NotFoundError,
    StoreError,
    StoreMissingError,
    StoreUnavailableError,
)
from engine.store._model import History, HistoryEvent, PolicyStore, PublishResult, StoredVersion, WatchHandle
from engine.store._url import (
    DEFAULT_KV_PREFIX,
    DEFAULT_STORE_URL,
    ArangoLocation,
    EtcdLocation,
    RedisLocation,
    SqliteLocation,
    StoreURLError,
    mask_url,
    parse_store_url,
    redact,
    resolve_store_url,
)
from engine.store._validate import document_yaml
from engine.store._watch import Poller, PollingWatch

__all__ = [
    "DEFAULT_KV_PREFIX",
    "DEFAULT_STORE_URL",
    "DEFAULT_TIMEOUT",
    "ArangoLocation",
    "ConflictError",
    "DamagedRecordError",
    "EtcdLocation",
    "History",
    "HistoryEvent",
    "InvalidPolicyError",
    "NotFoundError",
    "PolicyStore",
    "Poller",
    "PollingWatch",
    "PublishResult",
    "RedisLocation",
    "SqliteLocation",
    "StoreError",
    "StoreMissingError",
    "StoreURLError",
    "StoreUnavailableError",
    "StoredVersion",
    "WatchHandle",
    "diff_versions",
    "document_yaml",
    "mask_url",
    "open_store",
    "parse_store_url",
    "redact",
    "resolve_store_url",
    "store_timeout",
]

#: Seconds one request to a networked store may take (``$LLM_POLICY_STORE_TIMEOUT``).
DEFAULT_TIMEOUT = 5.0


def store_timeout(env: Mapping[str, str] | None = None) -> float:
    """``$LLM_POLICY_STORE_TIMEOUT`` in seconds, else :data:`DEFAULT_TIMEOUT`."""
    raw = (os.environ if env is None else env).get("LLM_POLICY_STORE_TIMEOUT", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError as exc:
        raise StoreURLError(f"LLM_POLICY_STORE_TIMEOUT={raw!r} is not a number of seconds") from exc
    if not value > 0:
        raise StoreURLError(f"LLM_POLICY_STORE_TIMEOUT={raw!r} must be positive")
    return value


def open_store(
    url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    create: bool = True,
    timeout: float | None = None,
) -> PolicyStore:
    """Open the store a URL names (see the module docstring for the forms and fallbacks).

    ``create=False`` refuses (:class:`StoreMissingError`) a SQLite file that does not
    exist instead of creating it; the networked stores never create anything on open
    (``migrate`` does) and refuse writes until it has run. ``timeout`` bounds each
    request to a networked store (default ``$LLM_POLICY_STORE_TIMEOUT``, else 5 s), so a
    server that accepts connections but never answers costs that long, not minutes.

    Raises :class:`StoreURLError` (a ``ValueError``) for a URL it cannot read, and
    :class:`StoreUnavailableError` when a SQLite file cannot be opened or created.
    Networked stores connect lazily: an unreachable server shows on the first operation.
    """
    location = parse_store_url(resolve_store_url(url, env), env)
    seconds = timeout if timeout is not None else store_timeout(env)
    if isinstance(location, SqliteLocation):
        from engine.store._sqlite import SqliteStore

        return SqliteStore(location.path, url=location.url, create=create)
    try:
        if isinstance(location, RedisLocation):
            from engine.store._redis import RedisStore

            return RedisStore(location, timeout=seconds)
        if isinstance(location, EtcdLocation):
            from engine.store._etcd import EtcdStore

            return EtcdStore(location, timeout=seconds)
    except ImportError as exc:  # an optional extra not installed: say which, never crash the host
        raise StoreUnavailableError(f"policy store {location.masked}: {exc}") from exc
    from engine.store._arango import ArangoStore

    return ArangoStore(location, request_timeout=seconds)
