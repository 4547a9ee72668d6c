"""Shared fixtures. Each area's own fixtures live in its folder's conftest."""

# -- the Anthropic emulator: one real server per test session ------------------------------
from collections.abc import Iterator as _Iterator

import pytest as _pytest


@_pytest.fixture(scope="session")
def emulator_server() -> _Iterator[object]:
    """A real emulator server (uvicorn on 127.0.0.1) shared by the whole session."""
    from engine.emulator.server import run_emulator

    with run_emulator() as emu:
        yield emu


@_pytest.fixture
def emulator(emulator_server: object) -> _Iterator[object]:
    """The shared emulator, reset before each test (caches, billing, log, clock, batches)
    and with its fault settings restored afterwards. Has ``.base_url`` and ``.state``."""
    from engine.emulator.config import RUNTIME_SETTABLE

    state = emulator_server.state  # type: ignore[attr-defined]
    saved = {k: getattr(state.config, k) for k in RUNTIME_SETTABLE}
    state.reset()
    try:
        yield emulator_server
    finally:
        state.config.update(saved)
        state.reseed(saved["seed"])


# -- real Redis and etcd servers (Debian packages), one each per test session --------------
@_pytest.fixture(scope="session")
def redis_server() -> _Iterator[object]:
    """A real ``redis-server`` on a free port (``.url``, ``.restart()``, ``.kill()``)."""
    import realservers

    why = realservers.missing_binary("redis")
    if why:
        _pytest.skip(why)
    server = realservers.start_redis()
    try:
        yield server
    finally:
        server.close()


@_pytest.fixture(scope="session")
def etcd_server() -> _Iterator[object]:
    """A real ``etcd`` on free ports (``.url`` is ``etcd://127.0.0.1:PORT``)."""
    import realservers

    why = realservers.missing_binary("etcd")
    if why:
        _pytest.skip(why)
    server = realservers.start_etcd()
    try:
        yield server
    finally:
        server.close()
