"""Errors of the batch path.

::

    Exception
     └── BatchItemError        one request could not be answered through a batch
                               (and onFailure: error, or the direct fallback failed)
"""

from __future__ import annotations

__all__ = ["BatchItemError"]


class BatchItemError(Exception):
    """A batch item that ended without an answer, named so the caller can find it.

    ``failure`` is the last way it failed: ``errored``, ``expired``, ``canceled``,
    ``missing`` (absent from the results), ``submission`` (the batch was refused),
    ``direct`` (the direct fallback failed too) or ``uncollected`` (the batch could
    not be polled or read: it stays in the journal, and a resume or an identical
    request collects it later; it is never sent again, as it may be paid for).
    """

    def __init__(
        self,
        *,
        custom_id: str,
        request_hash: str,
        failure: str,
        attempts: int,
        detail: str = "",
        call_site: str | None = None,
    ) -> None:
        self.custom_id = custom_id
        self.request_hash = request_hash
        self.failure = failure
        self.attempts = attempts
        self.detail = detail
        self.call_site = call_site
        where = f" at call site {call_site!r}" if call_site else ""
        tail = f": {detail}" if detail else ""
        super().__init__(f"batch request {custom_id}{where} {failure} after {attempts} attempt(s){tail}")
