"""What the attack tests share: a real signaling app, its metrics, raw peers."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from shared.codec import decode, encode
from shared.messages import Message, Role
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token


@asynccontextmanager
async def signaling(**settings: Any) -> AsyncIterator[int]:
    """The real signaling app on 127.0.0.1 (plaintext: loopback); yields its port."""
    app: web.Application = create_app(SignalingSettings(secret=SecretStr(SECRET), **settings))
    async with serving(app) as port:
        yield port


async def metric(port: int, name: str, labels: str = "", *, ca_file: Path | None = None) -> float:
    """One sample of signaling's ``/metrics`` (0 if the series is absent); over HTTPS,
    verified against ``ca_file``, when given one."""
    url = f"{'https' if ca_file else 'http'}://127.0.0.1:{port}/metrics"
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    async with aiohttp.ClientSession() as http, http.get(url, ssl=context or True) as r:
        text = await r.text()
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class RawPeer:
    """A peer speaking the wire protocol by hand over a real WebSocket: an older
    release, or one that misbehaves on purpose."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: Message) -> None:
        await self.ws.send_bytes(encode(message))

    async def recv(self) -> Message:
        """The next message (the timeout only bounds a test that would otherwise hang)."""
        frame = await self.ws.receive(timeout=30)
        assert frame.type is aiohttp.WSMsgType.BINARY, frame
        return decode(frame.data, max_frame_bytes=1 << 20)

    async def recv_until(self, kind: type[Message]) -> Message:
        while not isinstance(message := await self.recv(), kind):
            pass
        return message


@asynccontextmanager
async def raw_peer(port: int, role: Role, peer_id: str) -> AsyncIterator[RawPeer]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"ws://127.0.0.1:{port}/v1/signal",
            headers={"Authorization": f"Bearer {token(role, peer_id)}"},
            max_msg_size=1 << 20,
        ) as ws,
    ):
        peer = RawPeer(ws)
        await peer.recv()  # Welcome
        yield peer
