"""Durable Message Batches: accumulator, batch client, service (the journal is :mod:`engine.journal`).

::

    service = BatchService(open_journal("sqlite:///.llm-policy/state.db"))
    await service.resume(lambda fingerprint, base_url: client_for_tenant(fingerprint, base_url))
    message = await service.submit_one(params, plan, client)         # pooled (accumulate)
    messages = await service.submit_many(params_list, plan, client)  # explicit batch
    await service.aclose(timeout=30)

The journal stores a credential fingerprint, never an API key.
"""

from engine.journal import (
    DEFAULT_JOURNAL_URL,
    Journal,
    JournalEntry,
    JournalError,
    Lease,
    Outcome,
    SqliteJournal,
    open_journal,
    register_journal_backend,
)
from engine.providers.anthropic.batches._ids import (
    canonical_params,
    client_identity,
    credential_fingerprint,
    custom_id_for,
    request_hash,
)
from engine.providers.anthropic.batches.accumulator import Accumulator
from engine.providers.anthropic.batches.client import BatchClient, split_requests
from engine.providers.anthropic.batches.errors import BatchItemError, NotBatchable, NotHandedOver, sdk_error
from engine.providers.anthropic.batches.service import Answer, BatchService, as_sent

__all__ = [
    "DEFAULT_JOURNAL_URL",
    "Accumulator",
    "Answer",
    "BatchClient",
    "BatchItemError",
    "BatchService",
    "Journal",
    "JournalEntry",
    "JournalError",
    "Lease",
    "NotBatchable",
    "NotHandedOver",
    "Outcome",
    "SqliteJournal",
    "as_sent",
    "canonical_params",
    "client_identity",
    "credential_fingerprint",
    "custom_id_for",
    "open_journal",
    "register_journal_backend",
    "request_hash",
    "sdk_error",
    "split_requests",
]
