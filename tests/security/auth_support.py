"""A real ``signaling-server serve`` process for the authentication attacks, and the
raw requests an attacker would send it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from shared.messages import Role
from shared.tokens import mint_token
from tests.support.wait import eventually

REPO = Path(__file__).resolve().parents[2]
SECRET = "security-test-secret-" + "k" * 24
OTHER_SECRET = "security-test-other-" + "q" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def token(role: Role, peer_id: str, *, secret: str = SECRET, ttl_s: int = 600) -> str:
    return mint_token(secret, role=role, peer_id=peer_id, ttl_s=ttl_s, now=time.time())


@dataclass
class Signaling:
    """A running server: where it listens, and its log so far."""

    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/signal"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@asynccontextmanager
async def signaling_server(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[Signaling]:
    """``signaling-server serve`` with ``args`` on a free loopback port, until the block ends."""
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    environ.update({"TANDEM_SECRET": SECRET, **(env or {})})
    log_path = tmp_path / f"signaling-{port}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "signaling", "serve", "--port", str(port), *args],
            cwd=REPO,
            env=environ,
            stdout=log,
            stderr=log,
        )
    server = Signaling(port=port, log_path=log_path)
    try:
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"signaling-server exited:\n{server.log()}")
                try:
                    async with session.get(f"{server.http}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(answers, timeout_s=60, what="signaling-server answers /healthz")
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def upgrade_status(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    """Try to open the signaling WebSocket; the HTTP status (101 when it opened)."""
    try:
        async with session.ws_connect(url, headers=headers) as ws:
            await ws.close()
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` byte for byte (HTTP clients refuse to send non-UTF-8 headers, an
    attacker's socket does not); the status and the body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read()  # Connection: close: the server ends the answer
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
