"""Signaling's own WebSocket (``signaling.ws_peer``) against raw clients on a real socket:
the RFC 6455 rules a library client never breaks, and the heartbeat."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.codec import decode, encode
from shared.messages import ErrorCode, Offer, Role, SignalError, Welcome
from signaling.app import create_app
from signaling.settings import SignalingSettings
from signaling.ws_frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT
from tests.signaling.support import SECRET, FakeClock, token_for
from tests.signaling.test_ws_frames import client_frame
from tests.support.wait import eventually

AppClient = TestClient[web.Request, web.Application]


class RawClient:
    """A WebSocket client written out by hand, so that it can break the rules."""

    opened: list[RawClient] = []  # closed when the test's app goes (``app``)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        RawClient.opened.append(self)

    @classmethod
    async def connect(cls, port: int, peer_id: str, *, behind: bytes = b"") -> RawClient:
        """Upgrade as ``peer_id`` (an edge); ``behind``: bytes sent in the same write."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /v1/signal HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
            f"Authorization: Bearer {token_for(Role.EDGE, peer_id)}\r\n\r\n".encode()
            + behind
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> None:
        self.writer.write(client_frame(opcode, payload, fin=fin, masked=masked))

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (final and unmasked, as a server's must be)."""
        b0, b1 = await self.reader.readexactly(2)
        assert b0 & 0x80 and not b0 & 0x70 and not b1 & 0x80
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(length)

    async def welcome(self) -> None:
        opcode, payload = await self.frame()
        assert opcode == OP_BINARY and isinstance(decode(payload), Welcome)

    async def close_code(self) -> int:
        """Read until the server's close frame; its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == OP_CLOSE:
                return int.from_bytes(payload[:2], "big")

    async def eof(self) -> bool:
        """Whether the server ends the TCP connection (reading whatever comes first)."""
        while await self.reader.read(65536):
            pass
        return True


@asynccontextmanager
async def app(**overrides: object) -> AsyncIterator[AppClient]:
    settings = SignalingSettings(secret=SecretStr(SECRET), **overrides)  # type: ignore[arg-type]
    application = create_app(settings, clock=FakeClock())
    async with TestClient(TestServer(application, host="127.0.0.1", port=0)) as client:
        try:
            yield client
        finally:
            # These clients never answer the server's close at shutdown: hang up first.
            for raw in RawClient.opened:
                raw.writer.close()
            RawClient.opened.clear()


def port_of(client: AppClient) -> int:
    port = client.server.port
    assert port is not None
    return port


async def edges(client: AppClient) -> int:
    return int((await (await client.get("/healthz")).json())["edges"])


async def edges_are(client: AppClient, count: int) -> bool:
    return await edges(client) == count


async def test_a_fragmented_message_is_reassembled_around_a_ping() -> None:
    """Fragments of one message, with a ping between them (allowed by RFC 6455 §5.4):
    the ping is answered at once with its payload, the message is handled whole."""
    async with app() as client:
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        message = encode(Offer(session_id="s1", sdp="v=0\r\n" * 40, model="m"))
        third = len(message) // 3
        peer.send(OP_BINARY, message[:third], fin=False)
        peer.send(OP_PING, b"between")
        peer.send(OP_CONTINUATION, message[third : 2 * third], fin=False)
        peer.send(OP_CONTINUATION, message[2 * third :])
        assert await peer.frame() == (OP_PONG, b"between")
        opcode, payload = await peer.frame()
        assert opcode == OP_BINARY
        reply = decode(payload)
        assert isinstance(reply, SignalError)  # no worker: the offer was read whole
        assert (reply.code, reply.session_id) == (ErrorCode.NO_WORKER, "s1")


async def test_frames_sent_right_behind_the_upgrade_request_are_served() -> None:
    async with app() as client:
        peer = await RawClient.connect(
            port_of(client), "pi-1", behind=client_frame(OP_PING, b"early")
        )
        frames = [await peer.frame(), await peer.frame()]
        assert (OP_PONG, b"early") in frames
        assert any(op == OP_BINARY and isinstance(decode(p), Welcome) for op, p in frames)


def unmasked(peer: RawClient) -> None:
    peer.send(OP_BINARY, b"x", masked=False)


def orphan_continuation(peer: RawClient) -> None:
    peer.send(OP_CONTINUATION, b"x")


def message_inside_a_message(peer: RawClient) -> None:
    peer.send(OP_BINARY, b"x", fin=False)
    peer.send(OP_BINARY, b"y")


def text(peer: RawClient) -> None:
    peer.send(OP_TEXT, b"hello")


@pytest.mark.parametrize(
    ("breach", "code"),
    [(unmasked, 1002), (orphan_continuation, 1002), (message_inside_a_message, 1002), (text, 1008)],
)
async def test_a_protocol_breach_closes_that_peer_with_its_code(
    breach: Callable[[RawClient], None], code: int
) -> None:
    async with app() as client:
        bystander = await RawClient.connect(port_of(client), "pi-0")
        await bystander.welcome()
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        breach(peer)
        assert await peer.close_code() == code
        peer.send(OP_CLOSE, code.to_bytes(2, "big"))
        assert await peer.eof()
        peer.writer.close()
        await eventually(lambda: edges_are(client, 1), what="the peer detached")
        bystander.send(OP_PING, b"still here")
        assert await bystander.frame() == (OP_PONG, b"still here")


async def test_a_message_over_the_limit_in_fragments_closes_with_1009() -> None:
    async with app(max_frame_bytes=1024) as client:
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        peer.send(OP_BINARY, b"x" * 600, fin=False)
        peer.send(OP_CONTINUATION, b"x" * 600)
        assert await peer.close_code() == 1009


async def test_an_oversized_frame_is_refused_from_its_header_then_passed_over() -> None:
    """1009 goes out before the payload is even sent; the payload is skipped, and the
    peer's answer to the close (behind it) ends the connection at once."""
    async with app(max_frame_bytes=1024) as client:
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        frame = client_frame(OP_BINARY, os.urandom(70000))
        peer.writer.write(frame[:14])
        assert await peer.close_code() == 1009
        peer.writer.write(frame[14:] + client_frame(OP_CLOSE, (1009).to_bytes(2, "big")))
        assert await peer.eof()


async def test_a_close_from_the_peer_is_echoed_and_the_server_hangs_up() -> None:
    async with app() as client:
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        assert await edges(client) == 1
        peer.send(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")
        assert await peer.frame() == (OP_CLOSE, (1000).to_bytes(2, "big"))
        assert await peer.eof()
        await eventually(lambda: edges_are(client, 0), what="the peer detached")


async def test_aiohttp_lets_go_of_an_upgraded_connection() -> None:
    """What the memory budget rests on: once upgraded, aiohttp holds no state for it."""
    async with app() as client:
        peer = await RawClient.connect(port_of(client), "pi-1")
        await peer.welcome()
        assert client.server.runner is not None
        server = client.server.runner.server
        assert server is not None
        await eventually(lambda: not server.connections, what="aiohttp forgot the connection")
        peer.send(OP_PING, b"served")
        assert await peer.frame() == (OP_PONG, b"served")


async def test_a_silent_peer_is_pinged_then_dropped_and_an_answering_one_is_kept() -> None:
    async with app(heartbeat_s=0.4) as client:
        answering = await RawClient.connect(port_of(client), "pi-1")
        await answering.welcome()
        silent = await RawClient.connect(port_of(client), "pi-2")
        await silent.welcome()
        pongs = 0

        async def answer() -> None:
            nonlocal pongs
            while True:
                opcode, payload = await answering.frame()
                if opcode == OP_PING:
                    answering.send(OP_PONG, payload)
                    pongs += 1

        answerer = asyncio.create_task(answer())
        try:
            assert await silent.frame() == (OP_PING, b"")  # after its silence...
            assert await silent.eof()  # ...and no pong: dropped
            await eventually(lambda: edges_are(client, 1), what="the silent peer detached")
            await eventually(lambda: pongs >= 3, what="three heartbeats answered")
            assert await edges(client) == 1
        finally:
            answerer.cancel()
