"""``llm-policy diff``: what changed between two stored versions, as a unified diff of YAML."""

from __future__ import annotations

import difflib
from typing import Protocol

from engine.store._model import StoredVersion
from engine.store._validate import document_yaml

__all__ = ["diff_versions"]


class _Getter(Protocol):
    def get(self, name: str, version: int | None = None) -> StoredVersion: ...


def diff_versions(store: _Getter, name: str, old: int, new: int) -> str:
    """The unified diff from version ``old`` to version ``new`` ("" when they are equal).

    Headers name the version and its revision, so a reviewer can tell which
    documents were compared even when the text is the same.
    """
    a, b = store.get(name, old), store.get(name, new)
    lines = difflib.unified_diff(
        document_yaml(a.document).splitlines(keepends=True),
        document_yaml(b.document).splitlines(keepends=True),
        fromfile=f"{name} v{a.version} ({a.revision[:12]})",
        tofile=f"{name} v{b.version} ({b.revision[:12]})",
    )
    return "".join(lines)
