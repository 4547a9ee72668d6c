"""Where the shipped files (schemas, policies, migrations) are, installed or in a checkout.

A wheel carries them under ``engine/_bundled/``; an editable install or a checkout
reads them from the repository's top level, where they are edited.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_path"]

_PACKAGE = Path(__file__).resolve().parent


def resource_path(relative: str) -> Path:
    """``resource_path("schemas/policy.v1.json")``: the bundled copy, else the checkout's."""
    bundled = _PACKAGE / "_bundled" / relative
    if bundled.exists():
        return bundled
    return _PACKAGE.parent / relative
