"""Running the emulator on a real uvicorn server in a background thread.

Tests, benchmarks and the CLI all use :func:`run_emulator`; it binds the socket
itself, so ``port=0`` yields the real port before the server starts serving.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from engine.emulator.app import build_app
from engine.emulator.config import EmulatorConfig
from engine.emulator.state import EmulatorState

__all__ = ["RunningEmulator", "bind", "make_server", "run_emulator"]


@dataclass(frozen=True)
class RunningEmulator:
    base_url: str
    state: EmulatorState
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


class _QuietDrops(logging.Filter):
    """Injected dropped connections are intended; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(state: EmulatorState, *, log_level: str = "warning") -> uvicorn.Server:
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in log.filters):
        log.addFilter(_QuietDrops())
    config = uvicorn.Config(
        build_app(state), log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=30
    )
    return uvicorn.Server(config)


@contextmanager
def run_emulator(port: int = 0, host: str = "127.0.0.1", **settings: Any) -> Iterator[RunningEmulator]:
    """Serve a fresh emulator on ``host:port`` (0 = any free port) until the block ends.

    ``settings`` are :class:`EmulatorConfig` fields (seed, fault_rate, latency_s, ...).
    """
    state = EmulatorState(EmulatorConfig(**settings))
    sock = bind(host, port)
    server = make_server(state)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator server did not start")
        time.sleep(0.005)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield RunningEmulator(base_url=f"http://{shown}:{real_port}", state=state, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
