"""The journal protocol: what every backend of the batch journal implements.

The journal is the durable record of batch items: what was sent, by whom, where it
is, what came back. Every backend (SQLite, ArangoDB, Redis) follows these rules, and
``tests/journal/`` checks them on each.

Rows are keyed by ``request_hash``. Item states::

    pending ──mark_submitted──▶ submitted ──record──▶ succeeded | direct | failed
       ▲                            │
       └────── record(pending) ─────┘   (a retry)

Ownership. Every non-final row has an **owner** (``Lease.owner``: process id and a
random token, one per service and event loop) and a **lease** (``lease_expires``,
epoch seconds) that the owner renews while it is alive (:meth:`Journal.renew`).
Only the owner submits or retries an item. Anyone else who asks for the same item
*joins* it (waits for its row to become final) and never sends it: a live pending
item is never resubmitted. When an owner dies its lease runs out; then, and only
then, :meth:`Journal.claim` or :meth:`Journal.take_over` moves its rows to a new
owner. Leases compare wall clocks: hosts sharing a journal must keep them within a
fraction of the lease (60 s by default).

Creation intent. Before ``batches.create`` the owner writes ``sent_at`` on the rows
(:meth:`Journal.mark_sending`). A pending row with ``sent_at`` may already be in a
batch the API accepted (a crash, a 500 or a dropped connection after the server
took it): before sending it again the owner lists the batches created since
``sent_at`` and adopts the one whose ``custom_id``\\ s match.

Every method is atomic (one transaction) and synchronous; the service calls them
from a worker thread, never on the event loop. Backends store no API key, only a
credential fingerprint. The methods:

- ``get_many(hashes)``: the rows that exist among ``hashes``.
- ``claim(entries, lease, stale_before=None)``: insert each new row owned by
  ``lease``; take over an existing one only if it is ``failed`` or final and last
  updated before ``stale_before`` (both reset to a new ``pending`` attempt from the
  entry: a new request, not a redelivery), or non-final with an expired lease
  (state, batch id and ``sent_at`` kept); leave every other row as it is. Returns
  the rows as they now stand: the caller owns those whose ``owner`` is ``lease.owner``.
- ``mark_sending(hashes, lease)``: set ``sent_at`` (now) on pending rows owned by ``lease``.
- ``mark_submitted(hashes, batch_id, lease)``: pending rows owned by ``lease`` become
  ``submitted`` in ``batch_id``.
- ``record(outcomes)``: apply results and retries; a ``succeeded`` or ``direct`` row
  is never changed again; a retry (``pending``) clears the batch id and ``sent_at``;
  final rows drop their params.
- ``renew(lease)``: push the lease of every non-final row owned by ``lease`` to
  now + ``lease.ttl_s``; returns how many.
- ``take_over(lease)``: every non-final row whose lease expired becomes ``lease``'s;
  returns them (with params).
- ``release(lease, hashes=None)``: end the lease of those non-final rows owned by
  ``lease`` (all of them with ``None``) now, so another owner may take them at once
  (a clean shutdown, an identity this process has no client for).
- ``items_in_batch(batch_id)``: the ``submitted`` rows of a batch, without params.
- ``prune(older_than_s)``: delete final rows not touched for that long (default:
  the retention limit); returns how many.
- ``close()``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_S",
    "FINAL_STATES",
    "ItemState",
    "Journal",
    "JournalEntry",
    "JournalError",
    "Lease",
    "Outcome",
    "takes_over",
]

ItemState = Literal["pending", "submitted", "succeeded", "direct", "failed"]
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "direct", "failed"})
DEFAULT_RETENTION_S = 7 * 24 * 3600
DEFAULT_LEASE_S = 60.0


class JournalError(Exception):
    """The journal cannot be opened, read or written (bad URL, unwritable, locked, corrupt)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who owns rows, and for how long each renewal holds them."""

    owner: str
    ttl_s: float = DEFAULT_LEASE_S

    @classmethod
    def new(cls, ttl_s: float = DEFAULT_LEASE_S) -> Lease:
        """A fresh owner: this process's id and a random token (unique per service and loop)."""
        return cls(f"{os.getpid()}-{secrets.token_hex(8)}", ttl_s)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request's row. ``params`` is kept until the item is final (to retry it after a restart)."""

    request_hash: str
    custom_id: str
    credential: str
    base_url: str
    state: ItemState
    attempts: int = 0
    batch_id: str | None = None
    call_site: str | None = None
    retries: int = 3
    on_failure: str = "direct"
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    owner: str | None = None
    lease_expires: float = 0.0
    sent_at: float | None = None
    #: A row pooled across processes (Redis): requests in the batch it left in, and how
    #: long it waited in the pool (ms). None elsewhere.
    pool_fill: int | None = None
    pool_wait_ms: float | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class Outcome:
    """A state change for :meth:`Journal.record`: the result (final) or a retry (back to pending)."""

    request_hash: str
    state: ItemState
    attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None


def takes_over(
    existing: JournalEntry, now: float, stale_before: float | None = None
) -> Literal["reset", "adopt", "keep"]:
    """What ``claim`` does to an existing row: the one rule every backend applies.

    ``reset``: a failed row, or a final one older than ``stale_before``, starts a new
    attempt; ``adopt``: a non-final row whose owner's lease ran out changes owner and
    keeps its state; ``keep``: anything else.
    """
    if existing.state == "failed":
        return "reset"
    if existing.final and stale_before is not None and existing.updated_at < stale_before:
        return "reset"
    if not existing.final and existing.lease_expires < now:
        return "adopt"
    return "keep"


@runtime_checkable
class Journal(Protocol):
    """See the module docstring for each method's contract."""

    def get_many(self, hashes: Sequence[str]) -> dict[str, JournalEntry]: ...

    def claim(
        self, entries: Sequence[JournalEntry], lease: Lease, stale_before: float | None = None
    ) -> dict[str, JournalEntry]: ...

    def mark_sending(self, hashes: Sequence[str], lease: Lease) -> None: ...

    def mark_submitted(self, hashes: Sequence[str], batch_id: str, lease: Lease) -> None: ...

    def record(self, outcomes: Sequence[Outcome]) -> None: ...

    def renew(self, lease: Lease) -> int: ...

    def take_over(self, lease: Lease) -> list[JournalEntry]: ...

    def release(self, lease: Lease, hashes: Sequence[str] | None = None) -> None: ...

    def items_in_batch(self, batch_id: str) -> list[JournalEntry]: ...

    def prune(self, older_than_s: float | None = None) -> int: ...

    def close(self) -> None: ...
