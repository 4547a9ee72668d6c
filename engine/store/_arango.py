"""Policies in PipesHub's ArangoDB: the ``aiconfigs`` collection, camelCase documents.

Layout (docs/store.md has the full picture), one policy ``NAME``::

    llmPolicyHead_NAME              {kind: "llmPolicyHead", name, latestVersion, latestRevision,
                                     activeVersion, activeRevision, eventCount, updatedAt}
    llmPolicyVersion_NAME_000001    {kind: "llmPolicyVersion", name, version, revision, document,
                                     author, comment, createdAt}           (immutable)
    llmPolicyEvent_NAME_000001      {kind: "llmPolicyEvent", name, seq, event, targetVersion,
                                     fromVersion, toVersion, author, comment, at}  (append-only)
    llmPolicyMigration_0001         {kind: "llmPolicyMigration", migrationId, description, appliedAt}

Every write is one stream transaction: read the head, insert the version and the
event (their keys are derived from name and number, so a duplicate is refused by
the primary index), then update the head with a compare-and-set on its ``_rev``.
Whoever commits second gets a revision or write-write conflict and starts over on
fresh state, so versions stay contiguous with exactly one active. Policy names
match ``^[a-z0-9][a-z0-9-]{0,62}$``, so ``_`` separates the parts of a key
unambiguously.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from arango.client import ArangoClient
from arango.collection import StandardCollection
from arango.database import StandardDatabase, TransactionDatabase
from arango.exceptions import ArangoError, ArangoServerError, DocumentRevisionError
from arango.http import DefaultHTTPClient

from engine.store._core import BaseStore, Change, Head, Raced, guarded
from engine.store._errors import NotFoundError, StoreMissingError, StoreUnavailableError
from engine.store._model import History, HistoryEvent, StoredVersion, utc_now
from engine.store._records import event_doc, event_from, head_doc, head_from, version_doc, version_from
from engine.store._url import ArangoLocation, redact

__all__ = ["COLLECTION", "ArangoStore"]

log = logging.getLogger("engine.store")

COLLECTION = "aiconfigs"
HEAD, VERSION, EVENT, MIGRATION = "llmPolicyHead", "llmPolicyVersion", "llmPolicyEvent", "llmPolicyMigration"
_CONFLICT, _NOT_FOUND_COLLECTION, _DUPLICATE_NAME, _UNIQUE = 1200, 1203, 1207, 1210
INDEXES: tuple[dict[str, Any], ...] = (
    {
        "type": "persistent",
        "name": "llmPolicyVersions",
        "fields": ["kind", "name", "version"],
        "unique": True,
        "sparse": True,
    },
    {
        "type": "persistent",
        "name": "llmPolicyEvents",
        "fields": ["kind", "name", "seq"],
        "unique": True,
        "sparse": True,
    },
)


def head_key(name: str) -> str:
    return f"{HEAD}_{name}"


def version_key(name: str, version: int) -> str:
    return f"{VERSION}_{name}_{version:06d}"


def event_key(name: str, seq: int) -> str:
    return f"{EVENT}_{name}_{seq:06d}"


def _is_missing_collection(exc: ArangoError) -> bool:
    return isinstance(exc, ArangoServerError) and exc.error_code == _NOT_FOUND_COLLECTION


class ArangoStore(BaseStore):
    """The PipesHub store. Nothing is created on open: ``llm-policy migrate`` (0001)
    creates the collection and its indexes, so a read-only service can use it too."""

    driver_errors = (ArangoError, OSError)  # requests' errors are OSErrors

    def __init__(self, location: ArangoLocation, *, request_timeout: float = 5.0) -> None:
        self.location = location
        self.url = location.masked
        self.collection_name = location.collection
        # No retry at the HTTP level: the hot reload polls again anyway, and a CLI user
        # should hear about an unreachable or silent server after one timeout, not several.
        http = DefaultHTTPClient(request_timeout=request_timeout, retry_attempts=0)
        self._client = ArangoClient(hosts=location.endpoint, http_client=http, resolver_max_tries=1)
        self._db: StandardDatabase = self._client.db(
            location.database, username=location.username, password=location.password
        )

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        detail = redact(str(exc), self.location.password)
        return StoreUnavailableError(f"policy store {self.url}: {type(exc).__name__}: {detail}")

    @property
    def _col(self) -> StandardCollection:
        return self._db.collection(self.collection_name)

    def close(self) -> None:
        self._client.close()

    # -- schema and migrations -------------------------------------------------------

    @guarded
    def ensure_schema(self) -> None:
        if not self._db.has_collection(self.collection_name):
            try:
                self._db.create_collection(self.collection_name)
            except ArangoServerError as exc:
                if exc.error_code != _DUPLICATE_NAME:  # created meanwhile by someone else: fine
                    raise
        for index in INDEXES:
            try:
                self._col.add_index(dict(index))  # idempotent: an identical index is returned as is
            except ArangoServerError as exc:
                # A cluster refuses unique indexes on non-shard keys; the derived _keys still
                # make (name, version) and (name, seq) unique, so the store stays correct.
                log.warning(
                    "policy store %s: index %s not created (%s); relying on document keys",
                    self.url,
                    index["name"],
                    redact(str(exc), self.location.password),
                )

    @guarded
    def applied_migrations(self) -> dict[str, str]:
        rows = self._query(
            "FOR d IN @@col FILTER d.kind == @kind SORT d.migrationId RETURN [d.migrationId, d.appliedAt]",
            kind=MIGRATION,
            missing=[],
        )
        return {str(mid): str(at) for mid, at in rows}

    @guarded
    def record_migration(self, migration_id: str, description: str) -> bool:
        doc = {
            "_key": f"{MIGRATION}_{migration_id}",
            "kind": MIGRATION,
            "migrationId": migration_id,
            "description": description,
            "appliedAt": utc_now(),
        }
        try:
            self._col.insert(doc, sync=True)
        except ArangoServerError as exc:
            if exc.error_code == _UNIQUE:
                return False
            raise
        return True

    # -- reads ------------------------------------------------------------------------

    def _get(self, key: str, *, col: StandardCollection | None = None) -> dict[str, Any] | None:
        try:
            return cast("dict[str, Any] | None", (col or self._col).get(key))
        except ArangoServerError as exc:
            if _is_missing_collection(exc):
                return None
            raise

    def _query(self, aql: str, *, missing: list[Any], **bind: Any) -> list[Any]:
        try:
            cursor = self._db.aql.execute(aql, bind_vars={"@col": self.collection_name, **bind})
        except ArangoServerError as exc:
            if _is_missing_collection(exc):
                return missing
            raise
        return list(cast("Iterator[Any]", cursor))

    def _head(self, name: str, *, col: StandardCollection | None = None) -> Head | None:
        doc = self._get(head_key(name), col=col)
        if doc is None:
            return None
        return head_from(doc, name, self.url, f"{self.collection_name}/{head_key(name)}", doc.get("_rev"))

    def _version(self, doc: dict[str, Any], active_version: int) -> StoredVersion:
        return version_from(doc, active_version, self.url, f"{self.collection_name}/{doc.get('_key')}")

    @guarded
    def active_revision(self, name: str) -> tuple[int, str] | None:
        head = self._head(name)
        return (head.active_version, head.active_revision) if head else None

    @guarded
    def get(self, name: str, version: int | None = None) -> StoredVersion:
        head = self._head(name)
        if head is None:
            raise NotFoundError(name)
        wanted = head.active_version if version is None else version
        doc = self._get(version_key(name, wanted)) if wanted >= 1 else None
        if doc is None:
            raise NotFoundError(name, wanted, hint=f"it has versions 1..{head.latest_version}")
        return self._version(doc, head.active_version)

    @guarded
    def history(self, name: str) -> History:
        head = self._head(name)
        if head is None:
            raise NotFoundError(name)
        # Versions and events are immutable and the head only ever points at committed
        # ones, so bounding both by the head gives one consistent picture.
        versions = self._query(
            "FOR d IN @@col FILTER d.kind == @kind AND d.name == @name AND d.version <= @upto "
            "SORT d.version RETURN d",
            kind=VERSION,
            name=name,
            upto=head.latest_version,
            missing=[],
        )
        events = self._query(
            "FOR d IN @@col FILTER d.kind == @kind AND d.name == @name AND d.seq <= @upto "
            "SORT d.seq RETURN d",
            kind=EVENT,
            name=name,
            upto=head.event_count,
            missing=[],
        )
        return History(
            name=name,
            versions=[self._version(doc, head.active_version) for doc in versions],
            events=[event_from(doc, self.url, f"{self.collection_name}/{doc.get('_key')}") for doc in events],
        )

    @guarded
    def names(self) -> list[str]:
        rows = self._query(
            "FOR d IN @@col FILTER d.kind == @kind SORT d.name RETURN d.name", kind=HEAD, missing=[]
        )
        return [str(n) for n in rows]

    # -- writes -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, name: str) -> Iterator[_ArangoTxn]:
        try:
            txn_db = self._db.begin_transaction(write=self.collection_name, sync=True, lock_timeout=10)
        except ArangoServerError as exc:
            if _is_missing_collection(exc):
                hint = f"the {self.collection_name!r} collection does not exist: run `llm-policy migrate`"
                raise StoreMissingError(f"no policy store at {self.url}: {hint}") from exc
            raise self.unavailable(exc) from exc
        except (ArangoError, OSError) as exc:
            raise self.unavailable(exc) from exc
        txn = _ArangoTxn(self, txn_db, name)
        try:
            yield txn
            txn_db.commit_transaction()
        except BaseException as exc:
            _abort_quietly(txn_db)
            if isinstance(exc, ArangoServerError) and _is_race(exc):
                raise Raced(txn.seen_latest) from exc
            if isinstance(exc, (ArangoError, OSError)):
                raise self.unavailable(exc) from exc
            raise


def _is_race(exc: ArangoServerError) -> bool:
    return (
        isinstance(exc, DocumentRevisionError)
        or exc.error_code in (_CONFLICT, _UNIQUE)
        or exc.http_code == 409
    )


def _abort_quietly(txn_db: TransactionDatabase) -> None:
    # Already aborted by the server, or unreachable (the server expires it): either way, done.
    with contextlib.suppress(ArangoError, OSError):
        txn_db.abort_transaction()


class _ArangoTxn:
    def __init__(self, store: ArangoStore, txn_db: TransactionDatabase, name: str) -> None:
        self.store = store
        self.col = txn_db.collection(store.collection_name)
        self.name = name
        self.seen_latest = 0

    def head(self) -> Head | None:
        head = self.store._head(self.name, col=self.col)
        if head is not None:
            self.seen_latest = head.latest_version
        return head

    def load(self, version: int) -> StoredVersion | None:
        doc = self.store._get(version_key(self.name, version), col=self.col) if version >= 1 else None
        return self.store._version(doc, active_version=-1) if doc else None

    def commit(self, change: Change) -> None:
        if change.new_version is not None:
            self.col.insert(_version_doc(change.new_version))
        self.col.insert(_event_doc(self.name, change.head.event_count, change.event))
        body = _head_doc(change.head, change.event.at)
        if change.head.token is None:
            self.col.insert(body)  # a concurrent first publish collides on the _key
        else:
            self.col.update({**body, "_rev": change.head.token}, check_rev=True, merge=False)


def _version_doc(new: StoredVersion) -> dict[str, Any]:
    return {"_key": version_key(new.name, new.version), **version_doc(new, VERSION)}


def _event_doc(name: str, seq: int, event: HistoryEvent) -> dict[str, Any]:
    return {"_key": event_key(name, seq), **event_doc(name, seq, event, EVENT)}


def _head_doc(head: Head, at: str) -> dict[str, Any]:
    return {"_key": head_key(head.name), **head_doc(head, at, HEAD)}
