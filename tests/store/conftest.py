"""Fixtures for the store contract suite: the same tests run against every backend.

SQLite always runs. Redis and etcd run against the real servers the session fixtures
``redis_server`` / ``etcd_server`` start (each test under its own key prefix, deleted
afterwards). ArangoDB runs when ``ARANGO_URL`` is set (with ``ARANGO_USERNAME``,
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


def _drop_kv_prefix(store: PolicyStore) -> None:
    from engine.store._etcd import EtcdStore, _range_end
    from engine.store._redis import RedisStore

    prefix = f"{store.prefix}/"  # type: ignore[attr-defined]
    if isinstance(store, RedisStore):
        keys = store._keys(prefix)
        if keys:
            store._client.delete(*keys)
    elif isinstance(store, EtcdStore):
        store._client.delete(prefix, range_end=_range_end(prefix))


def kv_url(request: pytest.FixtureRequest, kind: str) -> str:
    """A URL on the session's real Redis or etcd under a key prefix of its own."""
    server = request.getfixturevalue(f"{kind}_server")
    return f"{server.url}?prefix=/test/llm-policy/{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "redis", "etcd", "arangodb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty store of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policies.db'}"
        return
    if request.param in ("redis", "etcd"):
        url = kv_url(request, request.param)
        yield url
        cleanup = open_store(url)
        _drop_kv_prefix(cleanup)
        cleanup.close()
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
