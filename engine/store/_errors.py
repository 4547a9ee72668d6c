"""What a policy store raises. Every failure is one of these, never a driver's exception::

    StoreError                  anything the store refuses or cannot do
    ├── ConflictError           someone else changed the policy first (exit code 3)
    ├── NotFoundError           no such policy, or no such version of it
    ├── InvalidPolicyError      the document fails validation: nothing was stored
    ├── DamagedRecordError      a stored record was edited or damaged by hand (named in the message)
    └── StoreUnavailableError   the database cannot be reached or answered an error (exit code 4)
        └── StoreMissingError   there is no store at that URL (never created, or deleted)

Messages never contain a password: store URLs in them are masked first.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "DamagedRecordError",
    "InvalidPolicyError",
    "NotFoundError",
    "StoreError",
    "StoreMissingError",
    "StoreUnavailableError",
]


class StoreError(Exception):
    """Base of every error a policy store raises."""


class ConflictError(StoreError):
    """Another writer got there first; re-read and retry.

    ``version`` is the latest version the store holds now (the one the caller raced
    with), ``expected`` what the caller believed was latest.
    """

    def __init__(self, name: str, *, version: int, expected: int | None, detail: str = "") -> None:
        self.name = name
        self.version = version
        self.expected = expected
        what = f"expected version {expected}" if expected is not None else "a concurrent publish"
        msg = (
            f"policy {name!r} changed under you: the store is now at version {version} ({what}); "
            "re-read it and try again"
        )
        super().__init__(f"{msg}: {detail}" if detail else msg)


class NotFoundError(StoreError):
    """The policy, or the requested version of it, does not exist."""

    def __init__(self, name: str, version: int | None = None, *, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"policy {name!r}" if version is None else f"version {version} of policy {name!r}"
        super().__init__(f"{what} not found in the store" + (f"; {hint}" if hint else ""))


class InvalidPolicyError(StoreError):
    """The document did not validate, so it was not stored.

    ``errors`` and ``warnings`` are the validator's issues (each with ``format()``),
    so a command can print them exactly as ``llm-policy validate`` does.
    """

    def __init__(self, source: str, errors: list[Any], warnings: list[Any]) -> None:
        self.source = source
        self.errors = errors
        self.warnings = warnings
        first = errors[0].format() if errors else "invalid policy"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"refused to store an invalid policy: {first}{more}")


class StoreUnavailableError(StoreError):
    """The database could not be reached, or failed in a way the caller cannot fix."""


class StoreMissingError(StoreUnavailableError):
    """No store exists at the URL: it was never created (``llm-policy migrate``) or it was
    deleted. Nothing creates one implicitly, so a typo or a different working directory
    never becomes a fresh, empty store that silently takes the writes."""


class DamagedRecordError(StoreError):
    """A stored record cannot be read back (bad JSON, a version that is not a number...).

    ``record`` names it (a table row with its key, a document key, a key-value key) so an
    operator can find and repair it; the store never guesses a value for it.
    """

    def __init__(self, store: str, record: str, problem: str) -> None:
        self.record = record
        super().__init__(f"policy store {store}: damaged record {record}: {problem}")
