"""The store as hostile input: records edited or damaged by hand, a store deleted or
flushed, a server that accepts connections and never answers. Every backend."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.store import (
    DamagedRecordError,
    NotFoundError,
    PolicyStore,
    StoreMissingError,
    StoreUnavailableError,
    open_store,
)

from .helpers import policy_doc


def _overwrite(store: PolicyStore, record: str, raw: str, *, field: str | None = None) -> str:
    """Edit a stored record by hand: ``head`` (one ``field``) or version 2's document
    (``raw`` is its JSON text; for a key-value store, text that is not JSON replaces the
    whole value). Return the name the error must give the record."""
    from engine.store._kv import KeyValueStore
    from engine.store._sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        with conn:
            if record == "head":
                conn.execute(f"UPDATE policy_heads SET {field} = ? WHERE name = 'demo'", (raw,))
                where = "policy_heads row (name='demo')"
            else:
                conn.execute(
                    "UPDATE policy_versions SET document = ? WHERE name = 'demo' AND version = 2", (raw,)
                )
                where = "policy_versions row (name='demo', version=2)"
        conn.close()
        return where
    if isinstance(store, KeyValueStore):
        key = store.head_key("demo") if record == "head" else store.version_key("demo", 2)
        doc = json.loads(store._get(key) or b"{}")
        if field is not None:
            doc[{"active_version": "activeVersion"}[field]] = raw
            raw = json.dumps(doc)
        elif raw.startswith('{"'):
            doc["document"] = json.loads(raw)
            raw = json.dumps(doc)
        _put(store, key, raw.encode("utf-8"))
        return key
    pytest.skip("hand edits are staged for SQLite and the key-value stores")


def _put(store: Any, key: str, value: bytes) -> None:
    from engine.store._redis import RedisStore

    if isinstance(store, RedisStore):
        store._client.set(key, value)
    else:
        store._client.put(key, value)


@pytest.fixture
def two_versions(store: PolicyStore) -> PolicyStore:
    store.publish(policy_doc(rollout=10), author="ana")
    store.publish(policy_doc(rollout=20), author="ana")
    return store


def test_a_version_that_is_not_json_is_named_in_history_show_and_rollback(two_versions: PolicyStore) -> None:
    store = two_versions
    where = _overwrite(store, "version", "{not json")
    for attempt in (
        lambda: store.history("demo"),
        lambda: store.get("demo", 2),
        lambda: store.get("demo"),
        lambda: store.rollback("demo", 2, author="oncall"),
    ):
        with pytest.raises(DamagedRecordError, match="not JSON") as info:
            attempt()
        assert where in str(info.value) and store.url in str(info.value)
    assert store.get("demo", 1).document["spec"]["rollout"] == 10  # the intact rows still read


def test_a_version_number_that_is_not_a_number_is_named(two_versions: PolicyStore) -> None:
    store = two_versions
    where = _overwrite(store, "head", "two", field="active_version")
    for attempt in (
        lambda: store.history("demo"),
        lambda: store.get("demo"),
        lambda: store.active_revision("demo"),
        lambda: store.rollback("demo", 1, author="oncall"),
        lambda: store.publish(policy_doc(rollout=30), author="ana"),
    ):
        with pytest.raises(DamagedRecordError) as info:
            attempt()
        assert where in str(info.value) and "activeVersion" in str(info.value) and "'two'" in str(info.value)


def test_a_hand_edited_document_is_not_activated_by_rollback(two_versions: PolicyStore) -> None:
    store = two_versions
    edited = json.dumps({**policy_doc(rollout=20), "spec": {"enabled": True, "rollout": 5000}})
    _overwrite(store, "version", edited)
    store.rollback("demo", 1, author="oncall")
    with pytest.raises(DamagedRecordError, match="version 2"):
        store.rollback("demo", 2, author="oncall")
    assert store.get("demo").version == 1


def test_a_deleted_sqlite_store_is_not_restarted_by_a_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    with pytest.raises(StoreMissingError, match=r"llm-policy migrate") as info:
        open_store(url, create=False)
    assert str(tmp_path / "gone.db") in str(info.value)
    assert not (tmp_path / "gone.db").exists()


@pytest.mark.parametrize("kind", ["redis", "etcd"])
def test_a_flushed_key_space_is_not_restarted_at_version_1(request: pytest.FixtureRequest, kind: str) -> None:
    from .conftest import _drop_kv_prefix, kv_url

    store = open_store(kv_url(request, kind))
    try:
        with pytest.raises(StoreMissingError, match="migrate"):
            store.publish(policy_doc(), author="ana")  # never created
        store.ensure_schema()
        store.publish(policy_doc(rollout=10), author="ana")
        store.publish(policy_doc(rollout=20), author="ana")
        _drop_kv_prefix(store)  # FLUSHDB / a deleted key range
        with pytest.raises(StoreMissingError, match="migrate"):
            store.publish(policy_doc(rollout=30), author="ana")
        with pytest.raises(StoreMissingError):
            store.disable("demo", author="oncall")
        with pytest.raises(NotFoundError):
            store.get("demo")
        assert store.names() == []
    finally:
        _drop_kv_prefix(store)
        store.close()


# -- a server that accepts connections and never answers ---------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A real listening socket that never accepts: the kernel completes every TCP
    handshake, and no byte ever comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize(
    "scheme", ["redis://127.0.0.1:{}/0", "etcd://127.0.0.1:{}", "arangodb://u:p@127.0.0.1:{}/es"]
)
def test_a_silent_server_costs_one_bounded_timeout(silent_port: int, scheme: str) -> None:
    """Not a speed test: the bound checked (20 s against a 0.3 s timeout) only tells a
    bounded wait from the unbounded or 60 s waits a driver's defaults give."""
    store = open_store(scheme.format(silent_port), timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match=r"policy store \w+(\+\w+)?://"):
            store.active_revision("pipeshub-default")
    finally:
        store.close()
    assert time.monotonic() - started < 20


def test_the_timeout_comes_from_the_environment(silent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.store import StoreURLError, store_timeout

    assert store_timeout({}) == 5.0
    assert store_timeout({"LLM_POLICY_STORE_TIMEOUT": "0.25"}) == 0.25
    for bad in ("soon", "0", "-1"):
        with pytest.raises(StoreURLError, match="LLM_POLICY_STORE_TIMEOUT"):
            store_timeout({"LLM_POLICY_STORE_TIMEOUT": bad})
    monkeypatch.setenv("LLM_POLICY_STORE_TIMEOUT", "0.3")
    store = open_store(f"redis://127.0.0.1:{silent_port}/0")
    try:
        with pytest.raises(StoreUnavailableError, match=r"(?i)timeout|timed out"):
            store.names()
    finally:
        store.close()


def test_without_the_etcd_extra_the_store_is_unavailable_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "engine.store._etcd", raising=False)
    monkeypatch.setitem(sys.modules, "etcd3gw.client", None)  # as if the package were absent
    with pytest.raises(StoreUnavailableError, match=r"pip install 'llm-policy\[etcd\]'"):
        open_store("etcd://127.0.0.1:2379")


def test_a_password_holding_slash_and_at_authenticates_and_is_never_shown(
    request: pytest.FixtureRequest,
) -> None:
    """A real redis-server that requires a password with ``/`` and ``@`` in it."""
    import realservers

    if realservers.missing_binary("redis"):
        pytest.skip(realservers.missing_binary("redis"))
    password = "p/a@ss:w0rd"
    server = realservers.RealServer(
        "redis", lambda port, workdir: [*realservers._redis_argv(port, workdir), "--requirepass", password]
    )
    server.start()
    request.addfinalizer(server.close)
    store = open_store(f"redis://:{password}@127.0.0.1:{server.port}/0")
    try:
        assert password not in store.url and password not in repr(store)
        store.ensure_schema()
        store.publish(policy_doc(), author="ana")
        assert store.get("demo").version == 1
    finally:
        store.close()
    wrong = open_store(f"redis://:{password}x@127.0.0.1:{server.port}/0")
    with pytest.raises(StoreUnavailableError) as info:
        wrong.names()
    wrong.close()
    assert password not in str(info.value) and ":***@127.0.0.1" in str(info.value)
