"""The hand-over of an upgrade request from aiohttp to signaling's own ``PeerSocket``.

aiohttp keeps ~14 KB of state for as long as a WebSocket it serves lives (measured:
``docs/signaling.md``), so signaling's peers do not stay with it: ``check_upgrade``
validates the request as RFC 6455 §4.2.1 asks, and ``take_over`` answers 101, moves the
socket to a ``PeerSocket`` and has aiohttp let go of the connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web

from signaling.ws_frames import accept_key
from signaling.ws_peer import PeerSocket

__all__ = ["check_upgrade", "take_over"]


def check_upgrade(request: web.Request) -> str:
    """The client's ``Sec-WebSocket-Key``; ``HTTPBadRequest`` if this is no WebSocket
    version 13 upgrade (RFC 6455 §4.2.1)."""
    headers = request.headers
    if "websocket" not in headers.get("Upgrade", "").lower():
        raise web.HTTPBadRequest(text="not a WebSocket upgrade: Upgrade: websocket missing")
    connection = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        raise web.HTTPBadRequest(text="not a WebSocket upgrade: Connection: upgrade missing")
    if headers.get("Sec-WebSocket-Version", "") != "13":
        raise web.HTTPBadRequest(
            text="unsupported Sec-WebSocket-Version (13 only)",
            headers={"Sec-WebSocket-Version": "13"},
        )
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid = False
    if not valid:
        raise web.HTTPBadRequest(text=f"invalid Sec-WebSocket-Key {key[:32]!r}")
    return key


def take_over(request: web.Request, key: str, peer: PeerSocket) -> None:
    """Answer the upgrade (101) and move the connection from aiohttp to ``peer``.

    aiohttp's handler for this request is told its connection was lost: it forgets the
    connection (its server no longer lists it) and, when the handler returns, writes
    nothing more and closes nothing. ``ConnectionResetError`` if the client has gone."""
    transport, protocol = request.transport, request.protocol
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away before the upgrade")
    assert isinstance(transport, asyncio.Transport)
    # Bytes that came right behind the request (a client must wait for our 101 before
    # sending frames, but a pipelining one might not).
    tail: bytes = getattr(protocol, "_message_tail", b"")
    transport.set_protocol(peer)
    peer.connection_made(transport)
    transport.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )
    protocol.transport = None  # so that aiohttp closes nothing when it lets go
    protocol.connection_lost(None)
    if not transport.is_reading():
        transport.resume_reading()
    if tail:
        peer.data_received(tail)
