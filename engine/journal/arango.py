"""The batch journal in ArangoDB: the :class:`~engine.journal.protocol.Journal` protocol,
reached through the same URLs as the policy store (``arangodb://user:pass@host:8529/db``).

One document per request in the ``llmBatchItems`` collection (camelCase, PipesHub's
conventions), keyed by the request hash::

    {_key: requestHash, requestHash, customId, credential, baseUrl, state, attempts,
     batchId, callSite, retries, onFailure, params, result, error, createdAt, updatedAt,
     owner, leaseExpires, sentAt}

Each protocol method is one AQL query, which ArangoDB runs as one transaction, so
every method is atomic like its SQLite twin. The state and ownership rules sit in
the queries' filters, where SQLite has its ``WHERE``. No API key is ever stored:
``credential`` is a fingerprint. Two concurrent writers of the same item can collide
(a write-write conflict); the query is then retried.
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

from engine.journal.protocol import DEFAULT_RETENTION_S, JournalEntry, JournalError, Lease, Outcome
from engine.store._url import ArangoLocation, StoreURLError, parse_store_url, redact

__all__ = ["JOURNAL_COLLECTION", "ArangoJournal", "arango_journal_from_url", "open_arango_journal"]

JOURNAL_COLLECTION = "llmBatchItems"
_CHUNK = 1000
_ATTEMPTS = 5
_RETRYABLE = {1200, 1210}  # write-write conflict, unique constraint (two concurrent inserts)
_FINAL = ["succeeded", "direct", "failed"]
_OPEN = '["pending", "submitted"]'
_FINAL_AQL = '["succeeded", "direct", "failed"]'

# The three branches are protocol.takes_over: reset a failed row, adopt an expired one, keep the rest.
_CLAIM = f"""
FOR e IN @entries
  UPSERT {{_key: e._key}}
  INSERT e
  UPDATE ((OLD.state == "failed" OR (OLD.state IN {_FINAL_AQL} AND OLD.updatedAt < @stale)) ? {{
      state: "pending", attempts: 0, batchId: null, sentAt: null, params: e.params, result: null,
      error: null, retries: e.retries, onFailure: e.onFailure, callSite: e.callSite,
      owner: e.owner, leaseExpires: e.leaseExpires, updatedAt: e.updatedAt
    }} : (OLD.state IN {_OPEN} AND OLD.leaseExpires < @now) ? {{
      owner: e.owner, leaseExpires: e.leaseExpires, updatedAt: e.updatedAt,
      params: OLD.params == null ? e.params : OLD.params
    }} : {{}})
  IN @@col OPTIONS {{mergeObjects: false}}
  RETURN NEW
"""
_SENDING = """
FOR d IN @@col FILTER d._key IN @keys AND d.state == "pending" AND d.owner == @owner
  UPDATE d WITH {sentAt: @now, updatedAt: @now} IN @@col
"""
_MARK = """
FOR d IN @@col FILTER d._key IN @keys AND d.state == "pending" AND d.owner == @owner
  UPDATE d WITH {state: "submitted", batchId: @batch, updatedAt: @now} IN @@col
"""
_RECORD = """
FOR o IN @outcomes
  FOR d IN @@col FILTER d._key == o.h AND d.state NOT IN ["succeeded", "direct"]
    UPDATE d WITH {
      state: o.state, attempts: o.attempts, result: o.result, error: o.error, updatedAt: @now,
      batchId: o.state == "pending" ? null : d.batchId,
      sentAt: o.state == "pending" ? null : d.sentAt,
      params: o.state IN ["succeeded", "direct", "failed"] ? null : d.params
    } IN @@col OPTIONS {mergeObjects: false}
"""
_RENEW = f"""
FOR d IN @@col FILTER d.owner == @owner AND d.state IN {_OPEN}
  UPDATE d WITH {{leaseExpires: @expires}} IN @@col RETURN 1
"""
_TAKE_OVER = f"""
FOR d IN @@col FILTER d.state IN {_OPEN} AND d.leaseExpires < @now SORT d.createdAt
  UPDATE d WITH {{owner: @owner, leaseExpires: @expires}} IN @@col RETURN NEW
"""
_RELEASE = f"""
FOR d IN @@col FILTER (@all OR d._key IN @keys) AND d.owner == @owner AND d.state IN {_OPEN}
  UPDATE d WITH {{leaseExpires: 0}} IN @@col
"""


def _doc(e: JournalEntry, now: float, lease: Lease) -> dict[str, Any]:
    return {
        "_key": e.request_hash, "requestHash": e.request_hash, "customId": e.custom_id,
        "credential": e.credential, "baseUrl": e.base_url, "state": "pending", "attempts": e.attempts,
        "batchId": None, "callSite": e.call_site, "retries": e.retries, "onFailure": e.on_failure,
        "params": e.params, "result": None, "error": None, "createdAt": now, "updatedAt": now,
        "owner": lease.owner, "leaseExpires": now + lease.ttl_s, "sentAt": None,
    }  # fmt: skip


def _entry(d: dict[str, Any]) -> JournalEntry:
    return JournalEntry(
        request_hash=d["requestHash"], custom_id=d["customId"], credential=d["credential"],
        base_url=d["baseUrl"], state=d["state"], attempts=int(d["attempts"]), batch_id=d.get("batchId"),
        call_site=d.get("callSite"), retries=int(d["retries"]), on_failure=d["onFailure"],
        params=d.get("params"), result=d.get("result"), error=d.get("error"),
        created_at=float(d["createdAt"]), updated_at=float(d["updatedAt"]), owner=d.get("owner"),
        lease_expires=float(d.get("leaseExpires") or 0.0), sent_at=d.get("sentAt"),
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
            col.add_index({"type": "persistent", "name": "llmBatchItemsOwner", "fields": ["owner"]})
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

    def claim(
        self, entries: Sequence[JournalEntry], lease: Lease, stale_before: float | None = None
    ) -> dict[str, JournalEntry]:
        now = time.time()
        stale = -1.0 if stale_before is None else stale_before
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks([_doc(e, now, lease) for e in entries]):
            for doc in self._aql(_CLAIM, entries=list(chunk), now=now, stale=stale):
                found[doc["_key"]] = _entry(doc)
        return found

    def mark_sending(self, hashes: Sequence[str], lease: Lease) -> None:
        now = time.time()
        for chunk in _chunks(list(hashes)):
            self._aql(_SENDING, keys=list(chunk), owner=lease.owner, now=now)

    def mark_submitted(self, hashes: Sequence[str], batch_id: str, lease: Lease) -> None:
        now = time.time()
        for chunk in _chunks(list(hashes)):
            self._aql(_MARK, keys=list(chunk), batch=batch_id, owner=lease.owner, now=now)

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

    def renew(self, lease: Lease) -> int:
        return len(self._aql(_RENEW, owner=lease.owner, expires=time.time() + lease.ttl_s))

    def take_over(self, lease: Lease) -> list[JournalEntry]:
        now = time.time()
        rows = self._aql(_TAKE_OVER, owner=lease.owner, now=now, expires=now + lease.ttl_s)
        return [_entry(doc) for doc in rows]

    def release(self, lease: Lease, hashes: Sequence[str] | None = None) -> None:
        if hashes is None:
            self._aql(_RELEASE, all=True, keys=[], owner=lease.owner)
            return
        for chunk in _chunks(list(hashes)):
            self._aql(_RELEASE, all=False, keys=list(chunk), owner=lease.owner)

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]:
        rows = self._aql(
            'FOR d IN @@col FILTER d.batchId == @batch AND d.state == "submitted" '
            "RETURN MERGE(d, {params: null})",
            batch=batch_id,
        )
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
