"""Finding a batch the API may have created without telling us.

Items are journaled ``pending`` with ``sent_at`` (the intent) before
``batches.create``, and ``submitted`` once it returns. A create that failed
ambiguously (5xx, a dropped connection, a timeout) or a crash between the two
leaves items whose batch may exist and will be billed. Sending them again would
pay twice, so first the service lists the key's batches created since ``sent_at``
(less a clock-skew slack) with exactly as many requests as the group, waits for
each to end, and reads its first result line: ``custom_id`` values are request
hashes, unique to the group, so one line tells whether the batch is the group's.
"""

from __future__ import annotations

import logging

import anthropic

from engine.providers.anthropic.batches.client import BatchClient

__all__ = ["find_created"]

logger = logging.getLogger("llm_policy.batches")

SLACK_S = 120.0  # clock skew between this host and the API
LIST_PAGE = 100


def _size(batch: anthropic.types.messages.MessageBatch) -> int:
    c = batch.request_counts
    return c.processing + c.succeeded + c.errored + c.canceled + c.expired


async def _candidates(batches: BatchClient, since: float, size: int) -> list[str]:
    """Ids of the key's batches created after ``since`` with ``size`` requests (newest first)."""
    found: list[str] = []
    async for batch in batches.client.messages.batches.list(limit=LIST_PAGE):
        if batch.created_at.timestamp() < since - SLACK_S:
            break
        if _size(batch) == size:
            found.append(batch.id)
    return found


async def find_created(batches: BatchClient, custom_ids: set[str], since: float) -> str | None:
    """The id of the batch created for exactly ``custom_ids`` since ``since``, or None if there is none.

    API errors propagate: when the API cannot be asked, nobody can tell, and the
    caller must not send the items again. A candidate is waited for without a
    deadline: it may be another caller's, and is never canceled from here.
    """
    for batch_id in await _candidates(batches, since, len(custom_ids)):
        batch = await batches.wait(batch_id)
        if batch.results_url is None:
            continue
        async for line in batches.results(batch_id):
            if line.custom_id in custom_ids:
                logger.warning("batch %s was created although its create failed: adopted", batch_id)
                return batch_id
            break
    return None
