"""The stored records every document-shaped backend shares, and how they are read back.

ArangoDB documents and the values of the key-value stores (Redis, etcd) hold the same
camelCase JSON (PipesHub's convention); SQLite rows are mapped to it. Reading a record
back checks it against a strict model first, because records can be edited by hand: a
damaged one becomes a :class:`~engine.store.DamagedRecordError` that names the record
and the field, never a ``KeyError`` or ``ValueError`` traceback, and never a guess.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.store._core import Head
from engine.store._errors import DamagedRecordError
from engine.store._model import EventKind, HistoryEvent, StoredVersion

__all__ = [
    "decode_record",
    "event_doc",
    "event_from",
    "head_doc",
    "head_from",
    "version_doc",
    "version_from",
]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _HeadRecord(_Record):
    """One policy's pointers, as stored."""

    latestVersion: int = Field(ge=1)
    latestRevision: str
    activeVersion: int = Field(ge=1)
    activeRevision: str
    eventCount: int = Field(ge=1)


class _VersionRecord(_Record):
    name: str
    version: int = Field(ge=1)
    revision: str
    document: dict[str, Any]
    author: str
    comment: str = ""
    createdAt: str


class _EventRecord(_Record):
    event: EventKind
    targetVersion: int = Field(ge=1)
    fromVersion: int | None = None
    toVersion: int | None = None
    author: str
    comment: str = ""
    at: str


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "the record"
    got = repr(first.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{field}: {first['msg']} (found {got})"


def decode_record(raw: bytes | str, store: str, record: str) -> dict[str, Any]:
    """A record's JSON text as a mapping, or :class:`DamagedRecordError` naming it."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedRecordError(store, record, f"not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise DamagedRecordError(store, record, f"a JSON object was expected, found {type(value).__name__}")
    return value


def head_from(doc: dict[str, Any], name: str, store: str, record: str, token: Any = None) -> Head:
    """The head a record holds; ``token`` is the backend's compare-and-set handle for it."""
    try:
        r = _HeadRecord.model_validate(doc)
    except ValidationError as exc:
        raise DamagedRecordError(store, record, _problem(exc)) from exc
    return Head(
        name, r.latestVersion, r.latestRevision, r.activeVersion, r.activeRevision, r.eventCount, token
    )


def version_from(doc: dict[str, Any], active_version: int, store: str, record: str) -> StoredVersion:
    try:
        r = _VersionRecord.model_validate(doc)
    except ValidationError as exc:
        raise DamagedRecordError(store, record, _problem(exc)) from exc
    return StoredVersion(
        r.name,
        r.version,
        r.revision,
        r.document,
        r.author,
        r.comment,
        r.createdAt,
        r.version == active_version,
    )


def event_from(doc: dict[str, Any], store: str, record: str) -> HistoryEvent:
    try:
        r = _EventRecord.model_validate(doc)
    except ValidationError as exc:
        raise DamagedRecordError(store, record, _problem(exc)) from exc
    return HistoryEvent(r.event, r.targetVersion, r.author, r.at, r.comment, r.fromVersion, r.toVersion)


def version_doc(new: StoredVersion, kind: str) -> dict[str, Any]:
    return {
        "kind": kind, "name": new.name, "version": new.version, "revision": new.revision,
        "document": new.document, "author": new.author, "comment": new.comment, "createdAt": new.created_at,
    }  # fmt: skip


def event_doc(name: str, seq: int, event: HistoryEvent, kind: str) -> dict[str, Any]:
    return {
        "kind": kind, "name": name, "seq": seq, "event": event.event, "targetVersion": event.version,
        "fromVersion": event.from_version, "toVersion": event.to_version, "author": event.author,
        "comment": event.comment, "at": event.at,
    }  # fmt: skip


def head_doc(head: Head, at: str, kind: str) -> dict[str, Any]:
    return {
        "kind": kind, "name": head.name, "latestVersion": head.latest_version,
        "latestRevision": head.latest_revision, "activeVersion": head.active_version,
        "activeRevision": head.active_revision, "eventCount": head.event_count, "updatedAt": at,
    }  # fmt: skip
