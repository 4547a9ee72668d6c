"""Emulator tests use the session-wide ``emulator`` fixture from tests/conftest.py;
``api`` runs a test once through the sync SDK client and once through the async one."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_support import Api


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, emulator: Any) -> Api:
    return Api(emulator, request.param)
