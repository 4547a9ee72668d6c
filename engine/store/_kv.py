"""Policies in PipesHub's key-value store (Redis or etcd): sibling keys of ``/services/aiModels``.

Layout under the prefix (default ``/services/aiconfigs/llm-policy``), one policy ``NAME``,
every value camelCase JSON as in ArangoDB's ``aiconfigs`` (see ``_records``)::

    PREFIX/store                            marker written by ``migrate``: the store exists
    PREFIX/policies/NAME/head               {latestVersion, latestRevision, activeVersion,
                                             activeRevision, eventCount, updatedAt}
    PREFIX/policies/NAME/versions/000001    {name, version, revision, document, author, ...}  (immutable)
    PREFIX/policies/NAME/events/000001      {event, targetVersion, fromVersion, toVersion, ...} (append-only)
    PREFIX/migrations/0001                  {migrationId, description, appliedAt}

A write reads the marker and the head, then commits the new version, the event and the
new head in one compare-and-set on the head: Redis ``WATCH``/``MULTI``/``EXEC``, etcd a
transaction comparing the head's ``mod_revision``. The loser of a race starts over on
fresh state (``_core``), so versions stay contiguous with exactly one active. Nothing
is written without the marker: a flushed or never-initialised key space is reported
(:class:`StoreMissingError`), not silently restarted at version 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, cast

from engine.store._core import BaseStore, Change, Head, Raced, guarded
from engine.store._errors import (
    DamagedRecordError,
    NotFoundError,
    StoreError,
    StoreMissingError,
)
from engine.store._model import History, StoredVersion, utc_now
from engine.store._records import (
    decode_record,
    event_doc,
    event_from,
    head_doc,
    head_from,
    version_doc,
    version_from,
)

__all__ = ["KVSession", "KeyValueStore"]


class KVSession(Protocol):
    """One compare-and-set attempt: reads, then one atomic write of many keys that
    succeeds only if the watched keys did not change since they were read."""

    def read(self, key: str) -> bytes | None: ...

    def write(self, values: dict[str, bytes]) -> bool: ...


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class KeyValueStore(BaseStore):
    """The store over any key-value client that provides the four primitives below."""

    prefix: str

    # -- what a client supplies ----------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        raise NotImplementedError

    def _keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def _create(self, key: str, value: bytes) -> bool:
        """Set ``key`` only if it does not exist; False when it did."""
        raise NotImplementedError

    def _session(self, watched: list[str]) -> AbstractContextManager[KVSession]:
        raise NotImplementedError

    # -- keys ------------------------------------------------------------------------------

    @property
    def marker_key(self) -> str:
        return f"{self.prefix}/store"

    def head_key(self, name: str) -> str:
        return f"{self.prefix}/policies/{name}/head"

    def version_key(self, name: str, version: int) -> str:
        return f"{self.prefix}/policies/{name}/versions/{version:06d}"

    def event_key(self, name: str, seq: int) -> str:
        return f"{self.prefix}/policies/{name}/events/{seq:06d}"

    def migration_key(self, migration_id: str) -> str:
        return f"{self.prefix}/migrations/{migration_id}"

    # -- schema and migrations ---------------------------------------------------------------

    @guarded
    def ensure_schema(self) -> None:
        self._create(self.marker_key, _json({"kind": "llmPolicyStore", "createdAt": utc_now()}))

    @guarded
    def applied_migrations(self) -> dict[str, str]:
        keys = sorted(self._keys(f"{self.prefix}/migrations/"))
        found: dict[str, str] = {}
        for key, raw in zip(keys, self._get_many(keys), strict=True):
            if raw is not None:
                doc = decode_record(raw, self.url, key)
                found[str(doc.get("migrationId", key.rsplit("/", 1)[-1]))] = str(doc.get("appliedAt", ""))
        return found

    @guarded
    def record_migration(self, migration_id: str, description: str) -> bool:
        doc = {"migrationId": migration_id, "description": description, "appliedAt": utc_now()}
        return self._create(self.migration_key(migration_id), _json(doc))

    # -- reads -----------------------------------------------------------------------------

    def _head(self, name: str, raw: bytes | None) -> Head | None:
        if raw is None:
            return None
        key = self.head_key(name)
        return head_from(decode_record(raw, self.url, key), name, self.url, key)

    def _version(self, key: str, raw: bytes | None, active_version: int) -> StoredVersion | None:
        if raw is None:
            return None
        return version_from(decode_record(raw, self.url, key), active_version, self.url, key)

    @guarded
    def active_revision(self, name: str) -> tuple[int, str] | None:
        head = self._head(name, self._get(self.head_key(name)))
        return (head.active_version, head.active_revision) if head else None

    @guarded
    def get(self, name: str, version: int | None = None) -> StoredVersion:
        head = self._head(name, self._get(self.head_key(name)))
        if head is None:
            raise NotFoundError(name)
        wanted = head.active_version if version is None else version
        key = self.version_key(name, wanted)
        found = self._version(key, self._get(key), head.active_version) if wanted >= 1 else None
        if found is None:
            raise NotFoundError(name, wanted, hint=f"it has versions 1..{head.latest_version}")
        return found

    @guarded
    def history(self, name: str) -> History:
        head = self._head(name, self._get(self.head_key(name)))
        if head is None:
            raise NotFoundError(name)
        # Versions and events are immutable and the head only points at committed ones,
        # so bounding both by the head read first gives one consistent picture.
        vkeys = [self.version_key(name, v) for v in range(1, head.latest_version + 1)]
        ekeys = [self.event_key(name, s) for s in range(1, head.event_count + 1)]
        values = self._get_many(vkeys + ekeys)
        missing = [k for k, raw in zip(vkeys + ekeys, values, strict=True) if raw is None]
        if missing:
            raise DamagedRecordError(self.url, missing[0], "missing, although the head counts it")
        versions = [
            cast(StoredVersion, self._version(k, raw, head.active_version))
            for k, raw in zip(vkeys, values, strict=False)
        ]
        events = [
            event_from(decode_record(cast(bytes, raw), self.url, k), self.url, k)
            for k, raw in zip(ekeys, values[len(vkeys) :], strict=True)
        ]
        return History(name=name, versions=versions, events=events)

    @guarded
    def names(self) -> list[str]:
        base = f"{self.prefix}/policies/"
        return sorted(
            key[len(base) : -len("/head")]
            for key in self._keys(base)
            if key.endswith("/head") and "/" not in key[len(base) : -len("/head")]
        )

    # -- writes ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, name: str) -> Iterator[_KVTxn]:
        try:
            with self._session([self.marker_key, self.head_key(name)]) as session:
                yield _KVTxn(self, session, name)
        except (StoreError, Raced):
            raise
        except self.driver_errors as exc:
            raise self.unavailable(exc) from exc


class _KVTxn:
    def __init__(self, store: KeyValueStore, session: KVSession, name: str) -> None:
        self.store = store
        self.session = session
        self.name = name
        self.seen_latest = 0

    def head(self) -> Head | None:
        store = self.store
        if self.session.read(store.marker_key) is None:
            raise StoreMissingError(
                f"no policy store at {store.url} (key {store.marker_key} is missing: never created, "
                "or the key space was flushed): create it with `llm-policy migrate --store URL`"
            )
        head = store._head(self.name, self.session.read(store.head_key(self.name)))
        self.seen_latest = head.latest_version if head else 0
        return head

    def load(self, version: int) -> StoredVersion | None:
        if version < 1:
            return None
        key = self.store.version_key(self.name, version)
        return self.store._version(key, self.session.read(key), -1)

    def commit(self, change: Change) -> None:
        store, head = self.store, change.head
        values: dict[str, bytes] = {}
        if change.new_version is not None:
            new = change.new_version
            values[store.version_key(self.name, new.version)] = _json(version_doc(new, "llmPolicyVersion"))
        event = event_doc(self.name, head.event_count, change.event, "llmPolicyEvent")
        values[store.event_key(self.name, head.event_count)] = _json(event)
        values[store.head_key(self.name)] = _json(head_doc(head, change.event.at, "llmPolicyHead"))
        if not self.session.write(values):
            raise Raced(self.seen_latest)
