"""What a policy store raises. Every failure is one of these, never a driver's exception::

    StoreError                  anything the store refuses or cannot do
    ├── ConflictError           someone else changed the policy first (exit code 3)
    ├── NotFoundError           no such policy, or no such version of it
    ├── InvalidPolicyError      the document fails validation: nothing was stored
    └── StoreUnavailableError   the database cannot be reached or answered an error

Messages never contain a password: store URLs in them are masked first.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "InvalidPolicyError",
    "NotFoundError",
    "StoreError",
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
