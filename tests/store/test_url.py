"""Store URLs: backends, relative and absolute paths, environment fallbacks, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import (
    DEFAULT_KV_PREFIX,
    DEFAULT_STORE_URL,
    ArangoLocation,
    EtcdLocation,
    RedisLocation,
    SqliteLocation,
    StoreUnavailableError,
    StoreURLError,
    mask_url,
    open_store,
    parse_store_url,
    redact,
    resolve_store_url,
)


def test_sqlite_three_slashes_is_relative_and_four_is_absolute() -> None:
    rel = parse_store_url("sqlite:///data/p.db", env={})
    absolute = parse_store_url("sqlite:////var/lib/p.db", env={})
    assert isinstance(rel, SqliteLocation) and rel.path == Path("data/p.db")
    assert isinstance(absolute, SqliteLocation) and absolute.path == Path("/var/lib/p.db")


@pytest.mark.parametrize("url", ["sqlite://p.db", "sqlite:///", "sqlite:///:memory:", "sqlite:///dir/"])
def test_bad_sqlite_urls_are_refused_with_the_form_to_use(url: str) -> None:
    with pytest.raises(StoreURLError, match="sqlite:///"):
        parse_store_url(url, env={})


def test_url_resolution_order_is_argument_then_env_then_default() -> None:
    assert resolve_store_url("sqlite:///a.db", env={"LLM_POLICY_STORE": "sqlite:///b.db"}) == "sqlite:///a.db"
    assert resolve_store_url(None, env={"LLM_POLICY_STORE": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert resolve_store_url(None, env={}) == DEFAULT_STORE_URL == "sqlite:///./.llm-policy/policies.db"


def test_arango_url_in_full() -> None:
    loc = parse_store_url("arangodb://ana:p%40ss@db.internal:8530/es", env={})
    assert loc == ArangoLocation("http://db.internal:8530", "es", "ana", "p@ss", "aiconfigs")
    tls = parse_store_url("arangodb+https://ana:x@db.internal/es?collection=other", env={})
    assert isinstance(tls, ArangoLocation)
    assert (tls.endpoint, tls.collection) == ("https://db.internal:8529", "other")


def test_arango_parts_left_out_come_from_the_environment() -> None:
    env = {
        "ARANGO_URL": "https://arango:8529",
        "ARANGO_USERNAME": "svc",
        "ARANGO_PASSWORD": "pw",
        "ARANGO_DB": "es",
    }
    assert parse_store_url("arangodb://", env=env) == ArangoLocation("https://arango:8529", "es", "svc", "pw")
    with pytest.raises(StoreURLError, match="ARANGO_URL is not set"):
        parse_store_url("arangodb://", env={})


def test_unknown_scheme_is_refused_without_showing_the_password() -> None:
    with pytest.raises(StoreURLError) as info:
        parse_store_url("mongodb://root:hunter2@h/db", env={})
    assert "hunter2" not in str(info.value) and "root:***@h" in str(info.value)


def test_passwords_are_masked_in_urls_reprs_and_free_text() -> None:
    assert mask_url("arangodb://root:secret@h:8529/es") == "arangodb://root:***@h:8529/es"
    assert mask_url("sqlite:///p.db") == "sqlite:///p.db"
    loc = parse_store_url("arangodb://root:secret@h:8529/es", env={})
    assert "secret" not in repr(loc) and loc.masked == "arangodb://root:***@h:8529/es"
    assert (
        redact("auth failed for secret at http://u:secret@h", "secret")
        == "auth failed for *** at http://u:***@h"
    )
    store = open_store("arangodb://root:secret@127.0.0.1:9/es")
    try:
        assert "secret" not in repr(store) and "secret" not in store.url
    finally:
        store.close()


def test_a_sqlite_file_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(StoreUnavailableError, match="cannot create"):
        open_store(f"sqlite:///{blocker}/sub/p.db")


def test_redis_and_etcd_urls() -> None:
    loc = parse_store_url("rediss://ops:s3cret@kv.internal:6380/2?prefix=/services/aiconfigs/p", env={})
    assert loc == RedisLocation("kv.internal", 6380, 2, "ops", "s3cret", True, "/services/aiconfigs/p")
    assert loc.masked == "rediss://ops:***@kv.internal:6380/2?prefix=/services/aiconfigs/p"
    plain = parse_store_url("redis://127.0.0.1", env={})
    assert plain == RedisLocation("127.0.0.1", 6379, 0, "", "", False, DEFAULT_KV_PREFIX)
    assert DEFAULT_KV_PREFIX == "/services/aiconfigs/llm-policy"
    etcd = parse_store_url("etcd://etcd:2379", env={})
    assert etcd == EtcdLocation("etcd", 2379, False, DEFAULT_KV_PREFIX)
    assert parse_store_url("etcd+https://etcd", env={}) == EtcdLocation("etcd", 2379, True, DEFAULT_KV_PREFIX)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis://h/zero", "database number"),
        ("redis:///0", "names no host"),
        ("redis://h/0?prefix=no-slash", "key prefix"),
        ("etcd://root:pw@h:2379", "authentication is not supported"),
        ("etcd://h:2379/path", "takes no path"),
    ],
)
def test_bad_redis_and_etcd_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(StoreURLError, match=match) as info:
        parse_store_url(url, env={})
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("password", ["pa/ss", "p@ss/w:rd", "/leading", "tr@iling/", "sp%2Fenc"], ids=repr)
@pytest.mark.parametrize(
    "template", ["arangodb://root:{}@db:8529/es", "redis://ops:{}@kv:6379/0", "rediss://:{}@kv/1"]
)
def test_a_password_is_masked_whatever_it_contains(template: str, password: str) -> None:
    url = template.format(password)
    masked = mask_url(url)
    assert password not in masked and "***" in masked
    location = parse_store_url(url, env={})
    assert location.password == password.replace("%2F", "/")  # type: ignore[union-attr]
    assert password not in location.masked and password not in repr(location)
    with pytest.raises(StoreURLError) as info:
        parse_store_url(url.replace("://", "x://", 1), env={})
    assert password not in str(info.value)
