"""Real ``redis-server`` and ``etcd`` processes for the tests that need them.

Each server runs from the Debian package's binary on a free loopback port with its data
in a temporary directory, and is stopped by PID. Nothing here mocks a server: a test
that needs Redis or etcd talks to the real thing. When a binary is missing the
fixtures skip with the reason (``.ci/run`` installs both, so CI never skips).

Servers can be stopped and started again on the same port and data directory
(``restart``), which the fault tests use to cut a client off mid-run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {proc.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout}s")


@dataclass
class RealServer:
    """One server process: ``url`` to reach it, ``stop``/``start``/``restart``/``kill``."""

    kind: str
    argv_for: object  # Callable[[int, Path], list[str]]
    port: int = field(default_factory=free_port)
    extra_ports: tuple[int, ...] = ()
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="llm-policy-srv-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.kind == "redis":
            return f"redis://127.0.0.1:{self.port}/0"
        return f"etcd://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 20.0) -> None:
        log = self.workdir / "server.log"
        argv = self.argv_for(self.port, self.workdir, *self.extra_ports)  # type: ignore[operator]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_for_port(self.port, self.proc, timeout, log)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _redis_argv(port: int, workdir: Path) -> list[str]:
    return [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--protected-mode", "no",
    ]  # fmt: skip


def _etcd_argv(port: int, workdir: Path, peer_port: int) -> list[str]:
    client = f"http://127.0.0.1:{port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        "etcd",
        "--name", "test",
        "--data-dir", str(workdir / "data"),
        "--listen-client-urls", client,
        "--advertise-client-urls", client,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"test={peer}",
        "--log-level", "error",
    ]  # fmt: skip


def missing_binary(kind: str) -> str | None:
    """Why a server of this kind cannot start here, or None when it can."""
    binary = {"redis": "redis-server", "etcd": "etcd"}[kind]
    if shutil.which(binary) is None:
        package = "redis-server" if kind == "redis" else "etcd-server"
        return f"{binary} not installed (Debian package {package})"
    return None


def start_redis() -> RealServer:
    server = RealServer("redis", _redis_argv)
    server.start()
    return server


def start_etcd() -> RealServer:
    server = RealServer("etcd", _etcd_argv, extra_ports=(free_port(),))
    server.start()
    return server
