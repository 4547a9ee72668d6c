"""Store URLs: backends, relative and absolute paths, environment fallbacks, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import (
    DEFAULT_STORE_URL,
    ArangoLocation,
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
