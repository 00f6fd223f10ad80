"""Test helpers: a fake clock, token minting, a real client WebSocket peer."""

from __future__ import annotations

import aiohttp

from shared.codec import decode, encode
from shared.messages import Message, Role, Welcome
from shared.tokens import mint_token

SECRET = "s" * 32
START = 1_700_000_000.0


class FakeClock:
    """A clock tests move by hand: tokens and offer timeouts expire without sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Peer:
    """A real aiohttp client WebSocket speaking the binary frame protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.welcome: Welcome | None = None
        """The connection's Welcome, where the helper that opened it kept it."""

    async def send(self, message: Message) -> None:
        await self.ws.send_bytes(encode(message))

    async def recv(self) -> Message:
        frame = await self.ws.receive(timeout=2)
        assert frame.type is aiohttp.WSMsgType.BINARY, frame
        return decode(frame.data, max_frame_bytes=1 << 20)

    async def closed_with(self) -> int | None:
        """Read until the server closes us; the close code (its reason in ``close_reason``).

        The timeout only bounds a test that would otherwise hang."""
        frame = await self.ws.receive(timeout=30)
        while frame.type is aiohttp.WSMsgType.PING:  # a peer opened with autoping=False
            frame = await self.ws.receive(timeout=30)
        assert frame.type is aiohttp.WSMsgType.CLOSE, frame
        self.close_reason = str(frame.extra or "")
        # The code the server sent: ws.close_code can read 1006 instead when the server
        # drops the socket before our reply to its close frame got out.
        return int(frame.data)


def token_for(role: Role, peer_id: str, *, now: float = START, ttl_s: int = 60) -> str:
    return mint_token(SECRET, role=role, peer_id=peer_id, ttl_s=ttl_s, now=now)
