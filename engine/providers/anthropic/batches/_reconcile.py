"""Closing the one crash window the journal cannot: accepted by the API, not yet journaled.

Items are journaled ``pending`` before ``batches.create`` and ``submitted`` right
after it returns. A crash between the two leaves ``pending`` items whose batch
exists (and will be billed). Resending them would pay twice, so on resume the
service first looks at the batches the key created since those items were last
written: any of them whose results carry one of the items' ``custom_id`` (which is
the request's hash) answers that item. Only ``succeeded`` lines are adopted; the
rest are sent again as usual.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anthropic
from anthropic.types.messages import MessageBatchIndividualResponse

from engine.providers.anthropic.batches.client import BatchClient

__all__ = ["adoptable_results"]

logger = logging.getLogger("llm_policy.batches")

SLACK_S = 120.0  # clock skew between this host and the API
LIST_PAGE = 100


async def _candidate_batches(batches: BatchClient, since: float) -> list[str]:
    """Ids of the key's batches created after ``since`` (newest first, as the API lists them)."""
    found: list[str] = []
    async for batch in batches.client.messages.batches.list(limit=LIST_PAGE):
        if batch.created_at.timestamp() < since - SLACK_S:
            break
        found.append(batch.id)
    return found


async def adoptable_results(
    batches: BatchClient, wanted: set[str], since: float
) -> AsyncIterator[MessageBatchIndividualResponse]:
    """Succeeded result lines for ``wanted`` custom_ids in batches created since ``since``."""
    try:
        candidates = await _candidate_batches(batches, since)
    except anthropic.APIError as exc:
        logger.warning("could not list recent batches to reconcile %d item(s): %s", len(wanted), exc)
        return
    for batch_id in candidates:
        if not wanted:
            return
        try:
            await batches.wait(batch_id)
            async for line in batches.results(batch_id):
                if line.custom_id in wanted and line.result.type == "succeeded":
                    wanted.discard(line.custom_id)
                    yield line
        except anthropic.APIError as exc:
            logger.warning("could not read batch %s while reconciling: %s", batch_id, exc)
