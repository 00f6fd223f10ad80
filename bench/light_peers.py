"""Light WebSocket peers for ``bench.signaling_load``: thousands in one process.

Each is a raw ``asyncio.Protocol`` (a few KB), not an aiohttp session: it upgrades with
a bearer token, waits for signaling's ``Welcome``, answers the server's pings and sends
its own, as an idle real peer does, and nothing else. Over ``wss://`` (``ssl=``) each
also holds asyncio's TLS read buffer: ``light_tls_context`` shrinks it in the peers'
process (their memory is not the server's, which is what the benchmark measures).
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import base64
import secrets
import ssl
import time
from pathlib import Path

from shared.codec import decode
from shared.messages import Role, Welcome
from shared.tokens import mint_token

__all__ = ["IdlePeer", "client_pings", "connect_idle", "light_tls_context"]


class IdlePeer(asyncio.Protocol):
    """A minimal WebSocket client: upgrade, wait for ``Welcome``, answer pings, ping."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._request = (
            f"GET /v1/signal HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(secrets.token_bytes(16)).decode()}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        self._buf = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError("closed before Welcome"))

    def ping(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(_frame(0x9, b""))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._upgraded:
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                if not self.welcomed.done():
                    self.welcomed.set_exception(ConnectionError(head.split(b"\r\n", 1)[0]))
                return
            self._upgraded, self._buf = True, rest
        while len(self._buf) >= 2:
            opcode, length, start = self._buf[0] & 0x0F, self._buf[1] & 0x7F, 2
            if length == 126:
                if len(self._buf) < 4:
                    return
                length, start = int.from_bytes(self._buf[2:4], "big"), 4
            elif length == 127:
                if len(self._buf) < 10:
                    return
                length, start = int.from_bytes(self._buf[2:10], "big"), 10
            if len(self._buf) < start + length:
                return
            payload, self._buf = self._buf[start : start + length], self._buf[start + length :]
            if opcode == 0x9 and self.transport is not None:
                self.transport.write(_frame(0xA, payload))
            elif opcode == 0x2 and not self.welcomed.done():
                if isinstance(decode(payload), Welcome):
                    self.welcomed.set_result(None)
            elif opcode == 0x8:
                self.closed = True


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payloads here are under 126 bytes)."""
    mask = secrets.token_bytes(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def light_tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client context trusting ``ca_file``; also makes this process's TLS read buffers
    16 KiB (asyncio's 256 KiB each would take 2.5 GB for 10,000 peers here)."""
    asyncio.sslproto.SSLProtocol.max_size = 16 * 1024
    return ssl.create_default_context(cafile=str(ca_file))


async def connect_idle(
    port: int, secret: str, n: int, concurrency: int, ssl_context: ssl.SSLContext | None = None
) -> list[IdlePeer]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    now = time.time()

    async def one(i: int) -> IdlePeer:
        token = mint_token(secret, role=Role.EDGE, peer_id=f"idle-{i}", ttl_s=3600, now=now)
        async with gate:
            _, peer = await loop.create_connection(
                lambda: IdlePeer("127.0.0.1", port, token), "127.0.0.1", port, ssl=ssl_context
            )
            await asyncio.wait_for(peer.welcomed, 120)
            return peer

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def client_pings(peers: list[IdlePeer], every_s: float) -> None:
    """Each peer pings every ``every_s``, spread evenly (as independent peers would)."""
    tick_s = 0.1
    per_tick = max(1, round(len(peers) * tick_s / every_s))
    while True:
        for i in range(0, len(peers), per_tick):
            for peer in peers[i : i + per_tick]:
                peer.ping()
            await asyncio.sleep(tick_s)
