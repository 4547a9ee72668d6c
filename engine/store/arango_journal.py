"""The batch journal in ArangoDB: the same :class:`Journal` protocol as the SQLite one,
reached through the same URLs as the policy store (``arangodb://user:pass@host:8529/db``).

One document per request in the ``llmBatchItems`` collection (camelCase, PipesHub's
conventions), keyed by the request hash::

    {_key: requestHash, requestHash, customId, credential, baseUrl, state, attempts,
     batchId, callSite, retries, onFailure, params, result, error, createdAt, updatedAt}

Each protocol method is one AQL query, which ArangoDB runs as one transaction, so
every method is atomic like its SQLite twin. The state rules (which transitions an
update may make) sit in the queries' filters, exactly where SQLite has its ``WHERE``.
No API key is ever stored: ``credential`` is a fingerprint. Two concurrent writers of
the same item can collide (a write-write conflict); the query is then retried.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

from arango.client import ArangoClient
from arango.database import StandardDatabase
from arango.exceptions import ArangoError, ArangoServerError
from arango.http import DefaultHTTPClient

from engine.providers.anthropic.batches.journal import (
    DEFAULT_RETENTION_S,
    JournalEntry,
    JournalError,
    Outcome,
)
from engine.store._url import ArangoLocation, StoreURLError, parse_store_url, redact

__all__ = ["JOURNAL_COLLECTION", "ArangoJournal", "open_arango_journal"]

JOURNAL_COLLECTION = "llmBatchItems"
_CHUNK = 1000
_ATTEMPTS = 5
_RETRYABLE = {1200, 1210}  # write-write conflict, unique constraint (two concurrent inserts)
_FINAL = ["succeeded", "direct", "failed"]

_ADD = """
FOR e IN @entries
  UPSERT {_key: e._key}
  INSERT e
  UPDATE (OLD.state IN ["failed", "pending"] ? {
      state: "pending", attempts: 0, batchId: null, params: e.params, result: null, error: null,
      retries: e.retries, onFailure: e.onFailure, callSite: e.callSite, updatedAt: e.updatedAt
    } : {})
  IN @@col OPTIONS {mergeObjects: false}
"""
_MARK = """
FOR d IN @@col FILTER d._key IN @keys AND d.state == "pending"
  UPDATE d WITH {state: "submitted", batchId: @batch, updatedAt: @now} IN @@col
"""
_RECORD = """
FOR o IN @outcomes
  FOR d IN @@col FILTER d._key == o.h AND d.state NOT IN ["succeeded", "direct"]
    UPDATE d WITH {
      state: o.state, attempts: o.attempts, result: o.result, error: o.error, updatedAt: @now,
      batchId: o.state == "pending" ? null : d.batchId,
      params: o.state IN ["succeeded", "direct"] ? null : d.params
    } IN @@col OPTIONS {mergeObjects: false}
"""


def _doc(e: JournalEntry, now: float) -> dict[str, Any]:
    return {
        "_key": e.request_hash, "requestHash": e.request_hash, "customId": e.custom_id,
        "credential": e.credential, "baseUrl": e.base_url, "state": e.state, "attempts": e.attempts,
        "batchId": e.batch_id, "callSite": e.call_site, "retries": e.retries, "onFailure": e.on_failure,
        "params": e.params, "result": e.result, "error": e.error, "createdAt": now, "updatedAt": now,
    }  # fmt: skip


def _entry(d: dict[str, Any]) -> JournalEntry:
    return JournalEntry(
        request_hash=d["requestHash"], custom_id=d["customId"], credential=d["credential"],
        base_url=d["baseUrl"], state=d["state"], attempts=int(d["attempts"]), batch_id=d.get("batchId"),
        call_site=d.get("callSite"), retries=int(d["retries"]), on_failure=d["onFailure"],
        params=d.get("params"), result=d.get("result"), error=d.get("error"),
        created_at=float(d["createdAt"]), updated_at=float(d["updatedAt"]),
    )  # fmt: skip


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class ArangoJournal:
    """Creates its collection and indexes on open: the process that journals batches
    is the one that writes to it, so it needs those rights anyway."""

    def __init__(
        self,
        location: ArangoLocation,
        *,
        collection: str = JOURNAL_COLLECTION,
        retention_s: float = DEFAULT_RETENTION_S,
        request_timeout: float = 30.0,
    ) -> None:
        self.location, self.url, self.collection = location, location.masked, collection
        self.retention_s = retention_s
        http = DefaultHTTPClient(request_timeout=request_timeout, retry_attempts=1, backoff_factor=0.2)
        self._client = ArangoClient(hosts=location.endpoint, http_client=http)
        self._db: StandardDatabase = self._client.db(
            location.database, username=location.username, password=location.password
        )
        self._ensure_schema()

    def _error(self, exc: BaseException) -> JournalError:
        detail = redact(str(exc), self.location.password)
        return JournalError(f"batch journal {self.url} ({self.collection}): {type(exc).__name__}: {detail}")

    def _ensure_schema(self) -> None:
        try:
            if not self._db.has_collection(self.collection):
                with contextlib.suppress(ArangoServerError):  # created meanwhile: fine, checked below
                    self._db.create_collection(self.collection)
            col = self._db.collection(self.collection)
            col.add_index({"type": "persistent", "name": "llmBatchItemsOpen", "fields": ["state", "batchId"]})
            col.add_index({"type": "persistent", "name": "llmBatchItemsAge", "fields": ["updatedAt"]})
        except (ArangoError, OSError) as exc:
            raise self._error(exc) from exc

    def _aql(self, query: str, **bind: Any) -> list[Any]:
        """Run one query (one transaction); retry it on a write-write conflict."""
        for attempt in range(_ATTEMPTS):
            try:
                cursor = self._db.aql.execute(query, bind_vars={"@col": self.collection, **bind})
                return list(cast("Iterable[Any]", cursor))
            except ArangoServerError as exc:
                if exc.error_code not in _RETRYABLE or attempt == _ATTEMPTS - 1:
                    raise self._error(exc) from exc
                time.sleep(0.01 * (attempt + 1))
            except (ArangoError, OSError) as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the Journal protocol ------------------------------------------------------

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(list(hashes)):
            for doc in self._aql("FOR d IN @@col FILTER d._key IN @keys RETURN d", keys=list(chunk)):
                found[doc["_key"]] = _entry(doc)
        return found

    def add(self, entries: Sequence[JournalEntry]) -> None:
        now = time.time()
        for chunk in _chunks([_doc(e, now) for e in entries]):
            self._aql(_ADD, entries=list(chunk))

    def mark_submitted(self, hashes: Sequence[str], batch_id: str) -> None:
        now = time.time()
        for chunk in _chunks(list(hashes)):
            self._aql(_MARK, keys=list(chunk), batch=batch_id, now=now)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        rows = [
            {
                "h": o.request_hash,
                "state": o.state,
                "attempts": o.attempts,
                "result": o.result,
                "error": o.error,
            }
            for o in outcomes
        ]
        for chunk in _chunks(rows):
            self._aql(_RECORD, outcomes=list(chunk), now=now)

    def open_batches(self) -> list[tuple[str, str, str]]:
        rows = self._aql(
            'FOR d IN @@col FILTER d.state == "submitted" '
            "COLLECT batch = d.batchId, credential = d.credential, baseUrl = d.baseUrl "
            "SORT batch RETURN [batch, credential, baseUrl]"
        )
        return [(str(b), str(c), str(u)) for b, c, u in rows]

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        rows = self._aql(
            'FOR d IN @@col FILTER d.batchId == @batch AND d.state == "submitted" '
            "RETURN MERGE(d, {params: null})",
            batch=batch_id,
        )
        return [_entry(doc) for doc in rows]

    def pending(self) -> list[JournalEntry]:
        rows = self._aql('FOR d IN @@col FILTER d.state == "pending" SORT d.createdAt RETURN d')
        return [_entry(doc) for doc in rows]

    def prune(self, older_than_s: float | None = None) -> int:
        cutoff = time.time() - (self.retention_s if older_than_s is None else older_than_s)
        removed = self._aql(
            "FOR d IN @@col FILTER d.state IN @final AND d.updatedAt < @cutoff REMOVE d IN @@col RETURN 1",
            final=_FINAL,
            cutoff=cutoff,
        )
        return len(removed)

    def counts(self) -> dict[str, int]:
        rows = self._aql("FOR d IN @@col COLLECT state = d.state WITH COUNT INTO n RETURN [state, n]")
        return {str(s): int(n) for s, n in rows}

    def close(self) -> None:
        self._client.close()


def open_arango_journal(
    url: str, *, retention_s: float = DEFAULT_RETENTION_S, collection: str = JOURNAL_COLLECTION
) -> ArangoJournal:
    """The journal for an ``arangodb://`` URL (the store's URL forms and ``ARANGO_*`` fallbacks);
    prunes final items past the retention limit, as ``open_journal`` does for SQLite."""
    journal = arango_journal_from_url(url, retention_s=retention_s, collection=collection)
    journal.prune()
    return journal


def arango_journal_from_url(
    url: str, *, retention_s: float = DEFAULT_RETENTION_S, collection: str = JOURNAL_COLLECTION
) -> ArangoJournal:
    """The journal for an ``arangodb://`` URL, not yet pruned (``open_journal`` prunes)."""
    try:
        location = parse_store_url(url)
    except StoreURLError as exc:
        raise JournalError(str(exc)) from exc
    if not isinstance(location, ArangoLocation):
        raise JournalError(f"not an ArangoDB URL: {location.masked!r}")
    return ArangoJournal(location, collection=collection, retention_s=retention_s)
