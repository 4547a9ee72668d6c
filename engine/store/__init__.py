"""Versioned policies: publish, activate, roll back, watch; SQLite or ArangoDB.

::

    store = open_store()                       # $LLM_POLICY_STORE, else ./.llm-policy/policies.db
    result = store.publish(policy.document, author="ana", comment="cache indexing 1h")
    store.get("pipeshub-default")              # the active version
    store.rollback("pipeshub-default", 3, author="ana")
    watch = store.watch("pipeshub-default", on_new_version, interval=5.0, known=(4, rev))

URLs: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
``arangodb://user:pass@host:8529/db`` (parts left out come from ``ARANGO_URL``,
``ARANGO_USERNAME``, ``ARANGO_PASSWORD``, ``ARANGO_DB``). Passwords never appear in
``repr``, messages or logs: ``store.url`` is the masked form.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.store._diff import diff_versions
from engine.store._errors import (
    ConflictError,
    InvalidPolicyError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from engine.store._model import History, HistoryEvent, PolicyStore, PublishResult, StoredVersion, WatchHandle
from engine.store._url import (
    DEFAULT_STORE_URL,
    ArangoLocation,
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
    "DEFAULT_STORE_URL",
    "ArangoLocation",
    "ConflictError",
    "History",
    "HistoryEvent",
    "InvalidPolicyError",
    "NotFoundError",
    "PolicyStore",
    "Poller",
    "PollingWatch",
    "PublishResult",
    "SqliteLocation",
    "StoreError",
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
]


def open_store(url: str | None = None, *, env: Mapping[str, str] | None = None) -> PolicyStore:
    """Open the store a URL names (see the module docstring for the forms and fallbacks).

    Raises :class:`StoreURLError` (a ``ValueError``) for a URL it cannot read, and
    :class:`StoreUnavailableError` when a SQLite file cannot be created. An ArangoDB
    store connects lazily: an unreachable server shows on the first operation.
    """
    location = parse_store_url(resolve_store_url(url, env), env)
    if isinstance(location, SqliteLocation):
        from engine.store._sqlite import SqliteStore

        return SqliteStore(location.path, url=location.url)
    from engine.store._arango import ArangoStore

    return ArangoStore(location)
