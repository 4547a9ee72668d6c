"""Fixtures of the Redis pool tests: a clean namespace per test on the session's redis-server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def redis_url(redis_server: object) -> Iterator[str]:
    """The session's real Redis, under a namespace of this test's own."""
    base = redis_server.url  # type: ignore[attr-defined]
    yield f"{base}?namespace=t-{uuid.uuid4().hex[:12]}"
