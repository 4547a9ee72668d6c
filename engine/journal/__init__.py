"""The durable journal of batch items: one protocol, backends side by side.

- :mod:`engine.journal.protocol`: the :class:`Journal` protocol, its rows and the
  ownership rules every backend follows (read its docstring before writing one);
- :mod:`engine.journal.sqlite`: the embedded default (``sqlite:///path.db``);
- :mod:`engine.journal.arango`: ArangoDB (``arangodb://user:pass@host:8529/db``,
  the policy store's URLs).

:func:`open_journal` picks the backend by URL scheme. A backend that ships in its
own module registers itself with :func:`register_journal_backend`; the built-in
table below names the module to import on first use, so a deployment loads only
the client library of the backend it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from engine.journal.protocol import (
    DEFAULT_LEASE_S,
    DEFAULT_RETENTION_S,
    FINAL_STATES,
    ItemState,
    Journal,
    JournalEntry,
    JournalError,
    Lease,
    Outcome,
    takes_over,
)
from engine.journal.sqlite import SqliteJournal, sqlite_path

__all__ = [
    "DEFAULT_JOURNAL_URL",
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "FINAL_STATES",
    "ItemState",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalFactory",
    "Lease",
    "Outcome",
    "SqliteJournal",
    "open_journal",
    "register_journal_backend",
    "takes_over",
]

DEFAULT_JOURNAL_URL = "sqlite:///.llm-policy/state.db"

#: ``factory(url, retention_s)`` opens a journal for a URL of its scheme.
JournalFactory = Callable[[str, float], Journal]

_BACKENDS: dict[str, JournalFactory] = {}

#: Schemes whose backend module registers itself when imported (loaded on first use).
_BUILTIN_MODULES: dict[str, str] = {
    "redis": "engine.journal.redis",
    "rediss": "engine.journal.redis",
}


def _sqlite(url: str, retention_s: float) -> Journal:
    return SqliteJournal(sqlite_path(url), retention_s=retention_s)


def _arango(url: str, retention_s: float) -> Journal:
    from engine.journal.arango import arango_journal_from_url

    return arango_journal_from_url(url, retention_s=retention_s)


def register_journal_backend(scheme: str, factory: JournalFactory) -> None:
    """Let :func:`open_journal` open ``scheme://...`` URLs with ``factory(url, retention_s)``.

    A backend module calls this at import time (``engine/journal/redis.py`` registers
    ``redis``); tests and deployments may register their own.
    """
    _BACKENDS[scheme] = factory


register_journal_backend("sqlite", _sqlite)
for _scheme in ("arangodb", "arangodb+http", "arangodb+https"):
    register_journal_backend(_scheme, _arango)


def _factory(scheme: str) -> JournalFactory | None:
    factory = _BACKENDS.get(scheme)
    module = _BUILTIN_MODULES.get(scheme)
    if factory is None and module is not None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise JournalError(f"the {scheme!r} journal backend is not available: {exc}") from exc
        factory = _BACKENDS.get(scheme)
    return factory


def open_journal(url: str | None = None, *, retention_s: float = DEFAULT_RETENTION_S) -> Journal:
    """Open the journal named by ``url`` (default ``sqlite:///.llm-policy/state.db``).

    ``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db``
    absolute, ``sqlite:///:memory:`` in memory (tests); ``arangodb://user:pass@host:8529/db``
    the ArangoDB journal; other schemes go to the backend registered for them. Final
    items are pruned once older than ``retention_s``.
    """
    url = url or DEFAULT_JOURNAL_URL
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = _factory(scheme)
    if factory is None:
        known = ", ".join(sorted({*_BACKENDS, *_BUILTIN_MODULES}))
        raise JournalError(
            f"unsupported journal URL scheme {scheme or url!r} in {url!r}: known schemes: {known}"
        )
    journal = factory(url, retention_s)
    journal.prune()
    return journal
