"""The journal backends under one contract. A backend joins by adding a param to ``journal``:
SQLite always, ArangoDB with ``ARANGO_URL``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.journal import Journal, open_journal

ARANGO_SKIP = "ArangoDB backend skipped: set ARANGO_URL (and ARANGO_USERNAME, ARANGO_PASSWORD) to run it"


def _sqlite(tmp_path: Path) -> Iterator[Journal]:
    journal = open_journal(f"sqlite:///{tmp_path / 'state.db'}")
    yield journal
    journal.close()


def _arango(tmp_path: Path) -> Iterator[Journal]:
    if not os.environ.get("ARANGO_URL"):
        pytest.skip(ARANGO_SKIP)
    from engine.journal.arango import open_arango_journal

    journal = open_arango_journal(
        f"arangodb:///{os.environ.get('ARANGO_DB', '_system')}",
        collection=f"llmBatchTest{uuid.uuid4().hex[:12]}",
    )
    yield journal
    journal._db.delete_collection(journal.collection)
    journal.close()


def _redis(tmp_path: Path, server: Any) -> Iterator[Journal]:
    journal = open_journal(f"{server.url}?namespace=contract-{uuid.uuid4().hex[:12]}")
    yield journal
    journal.close()


BACKENDS: dict[str, Any] = {"sqlite": _sqlite, "arangodb": _arango, "redis": _redis}


@pytest.fixture(params=sorted(BACKENDS))
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "redis":  # the session's redis-server, a namespace per test
        yield from _redis(tmp_path, request.getfixturevalue("redis_server"))
        return
    yield from BACKENDS[request.param](tmp_path)
