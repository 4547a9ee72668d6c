"""Durable Message Batches: journal, accumulator, batch client, service.

::

    service = BatchService(open_journal("sqlite:///.llm-policy/state.db"))
    await service.resume(lambda fingerprint, base_url: client_for_tenant(fingerprint, base_url))
    message = await service.submit_one(params, plan, client)         # pooled (accumulate)
    messages = await service.submit_many(params_list, plan, client)  # explicit batch
    await service.aclose()

The journal is a :class:`Journal` protocol (SQLite is the embedded default); it
stores a credential fingerprint, never an API key.
"""

from engine.providers.anthropic.batches._ids import (
    canonical_params,
    client_identity,
    credential_fingerprint,
    custom_id_for,
    request_hash,
)
from engine.providers.anthropic.batches.accumulator import Accumulator
from engine.providers.anthropic.batches.client import BatchClient, split_requests
from engine.providers.anthropic.batches.errors import BatchItemError
from engine.providers.anthropic.batches.journal import (
    DEFAULT_JOURNAL_URL,
    Journal,
    JournalEntry,
    JournalError,
    Outcome,
    SqliteJournal,
    open_journal,
    register_journal_backend,
)
from engine.providers.anthropic.batches.service import BatchService

__all__ = [
    "DEFAULT_JOURNAL_URL",
    "Accumulator",
    "BatchClient",
    "BatchItemError",
    "BatchService",
    "Journal",
    "JournalEntry",
    "JournalError",
    "Outcome",
    "SqliteJournal",
    "canonical_params",
    "client_identity",
    "credential_fingerprint",
    "custom_id_for",
    "open_journal",
    "register_journal_backend",
    "request_hash",
    "split_requests",
]
