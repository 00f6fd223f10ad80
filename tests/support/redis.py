"""A real ``redis-server`` on 127.0.0.1, started by the tests that need one.

One per test session (``redis_server`` fixture): it runs in a temp dir with persistence
off, on a free loopback port, and is stopped by its process handle, never by name.
Tests keep out of each other's way with their own key prefix (``unique_prefix``).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.stack import free_port

__all__ = ["RedisServer", "needs_redis", "redis_server", "unique_prefix"]

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (Debian package 'redis-server'; CI installs it)",
)


@dataclass(frozen=True)
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _start(workdir: Path) -> RedisServer:
    """Start redis-server on a free port; retry if another process took the port first."""
    for _ in range(5):
        port = free_port()
        log = (workdir / f"redis-{port}.log").open("wb")
        proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if "Ready to accept connections" in (workdir / f"redis-{port}.log").read_text():
                return RedisServer(port, proc)
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"redis-server did not start; see the logs in {workdir}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package 'redis-server')")
    server = _start(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def unique_prefix() -> str:
    """A key prefix no other test uses: one Redis serves the whole session."""
    return "t" + secrets.token_hex(6)
