"""Fixtures for the store contract suite: the same tests run against every backend.

SQLite always runs. ArangoDB runs when ``ARANGO_URL`` is set (with ``ARANGO_USERNAME``,
``ARANGO_PASSWORD`` and optionally ``ARANGO_DB``, default ``_system``); each test gets a
fresh collection that is dropped afterwards, so a real PipesHub database is never touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import PolicyStore, open_store

ARANGO_SKIP = "ArangoDB backend skipped: set ARANGO_URL (and ARANGO_USERNAME, ARANGO_PASSWORD) to run it"


def _arango_url() -> str:
    if not os.environ.get("ARANGO_URL"):
        pytest.skip(ARANGO_SKIP)
    database = os.environ.get("ARANGO_DB", "_system")
    return f"arangodb:///{database}?collection=llmPolicyTest{uuid.uuid4().hex[:12]}"


def _drop_arango_collection(store: PolicyStore) -> None:
    from engine.store._arango import ArangoStore

    assert isinstance(store, ArangoStore)
    if store._db.has_collection(store.collection_name):
        store._db.delete_collection(store.collection_name)


@pytest.fixture(params=["sqlite", "arangodb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty store of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policies.db'}"
        return
    url = _arango_url()
    yield url
    cleanup = open_store(url)
    _drop_arango_collection(cleanup)
    cleanup.close()


@pytest.fixture
def store(store_url: str) -> Iterator[PolicyStore]:
    """An empty store with its schema in place (what ``migrate`` would create)."""
    s = open_store(store_url)
    s.ensure_schema()
    yield s
    s.close()
