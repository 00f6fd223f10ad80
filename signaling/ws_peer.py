"""One peer's WebSocket after the upgrade: a small ``asyncio.Protocol``, not aiohttp's.

aiohttp routes and authenticates the upgrade request (``signaling.handlers``); then
``signaling.ws_upgrade.take_over`` answers it with 101 itself, moves the socket to a
``PeerSocket`` and tells aiohttp the connection is gone, so that aiohttp's request,
parser, queues, tasks and coroutine frames (~14 KB a connection, measured) are freed.
What stays per idle peer is the transport and this object (``__slots__``, ~2.4 KB with
the socket): no task, no timer, no buffer. Pings are answered as they are parsed,
without waking any task; heartbeats, token expiry and TURN refreshes run on one
app-wide sweep (``signaling.peer_hub``). A task exists only while a peer's messages are
being handled.

The protocol is RFC 6455 as a server (``signaling.ws_frames``): client frames must be
masked, fragmented messages are reassembled (control frames may come between the
fragments), a message or frame over ``max_frame_bytes`` closes with 1009, a protocol
error with 1002, and a close is a handshake: the side that closes first waits (at most
``CLOSE_TIMEOUT_S``) for the other's close frame, then the server drops the TCP
connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING

from shared.codec import encode
from shared.messages import Message, Role
from signaling.resume import digest, same
from signaling.ws_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    build_frame,
    close_payload,
    parse_close,
    parse_frame,
)

if TYPE_CHECKING:
    from signaling.peer_hub import PeerHub

__all__ = ["CLOSE_TIMEOUT_S", "PeerSocket"]

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0
"""How long a closing side waits for the other's close frame (aiohttp's default too)."""

_OPEN, _CLOSING, _CLOSED = 0, 1, 2
# Reading pauses while this many bytes of a peer's messages wait to be handled.
_INBOX_HIGH_BYTES = 1 << 18
_PING = build_frame(OP_PING, b"")


class PeerSocket(asyncio.Protocol):
    """One peer's WebSocket, server side; a ``takeover.PeerConnection``."""

    __slots__ = (
        "__weakref__",  # the cluster broker keeps weak sets of connections
        "_buf",
        "_close_timer",
        "_closed_waiter",
        "_discard",
        "_drain_waiter",
        "_frag",
        "_frag_op",
        "_hub",
        "_inbox",
        "_inbox_bytes",
        "_probe",
        "_pump",
        "_resume_digest",
        "_serving",
        "_skip",
        "_state",
        "_transport",
        "_write_paused",
        "attached",
        "expires_at",
        "heard_at",
        "peer_id",
        "ping_at",
        "refresh_at",
        "resume_secret",
        "role",
    )

    def __init__(
        self, hub: PeerHub, peer_id: str, role: Role, expires_at: float, resume_secret: str
    ) -> None:
        self._hub = hub
        self.peer_id = peer_id
        self.role = role
        self.resume_secret = resume_secret
        """Sent to this peer in every ``Welcome``; never logged."""
        self._resume_digest = digest(resume_secret)
        self.expires_at = expires_at
        """When the token expires (the app clock): the sweep closes the peer then."""
        self.heard_at = hub.loop.time()
        """Loop time anything last came from the peer (heartbeats ping after silence)."""
        self.ping_at = 0.0
        """Loop time of the heartbeat ping not yet answered; 0 when none is."""
        self.refresh_at = 0.0
        """Loop time the TURN credentials are next pushed; 0 without TURN."""
        self.attached = False
        """Whether the broker lists this connection (it must then be detached)."""
        self._transport: asyncio.Transport | None = None
        self._state = _OPEN
        self._discard = False  # we closed: frames still arriving are not handled
        self._buf: bytearray | None = None  # an incomplete frame
        self._skip = 0  # bytes of a refused frame still to pass over; -1: all from now on
        self._frag: list[bytes] | None = None  # the fragments of a message so far
        self._frag_op = 0
        self._inbox: collections.deque[tuple[int, bytes]] | None = None
        self._inbox_bytes = 0
        self._pump: asyncio.Task[None] | None = None
        self._serving = False  # messages go to the broker (after the Welcome)
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._probe: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:  # never the resume secret
        return f"<PeerSocket {self.role.value} {self.peer_id}>"

    def resumed_by(self, presented: bytes | None) -> bool:
        """Whether ``presented`` is the digest of this connection's resume secret."""
        return same(self._resume_digest, presented)

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._state == _CLOSED:
            return
        self.heard_at = self._hub.loop.time()
        self.ping_at = 0.0
        if self._probe is not None and not self._probe.done():
            self._probe.set_result(None)
        if self._skip:
            if self._skip < 0 or self._skip >= len(data):
                if self._skip > 0:
                    self._skip -= len(data)
                return
            data, self._skip = data[self._skip :], 0
        buf: bytes | bytearray
        if self._buf is not None:
            self._buf += data
            buf = self._buf
        else:
            buf = data
        pos, limit = 0, self._hub.max_frame_bytes
        while self._state != _CLOSED:
            frame = None
            try:
                frame = parse_frame(buf, pos, limit)
                if frame is None:
                    break
                fin, opcode, payload, pos = frame
                self._frame(fin, opcode, payload)
                if self._skip:  # the peer's close: nothing may follow it
                    self._buf = None
                    return
            except FrameError as exc:
                self._fail(exc.code, exc.reason)
                self._frag = None
                if frame is not None:  # a whole frame broke a rule: the stream is in step
                    continue
                if exc.end is None:  # the stream cannot be followed any more
                    self._buf, self._skip = None, -1
                    # Our close frame, then FIN: the peer reads both and hangs up (no
                    # reset, which could destroy the close frame before it is read).
                    if self._transport is not None and self._transport.can_write_eof():
                        self._transport.write_eof()
                    return
                # Pass over the refused frame, to read the peer's answer to our close.
                if exc.end > len(buf):
                    self._buf, self._skip = None, exc.end - len(buf)
                    return
                pos = exc.end
        if pos == len(buf):
            self._buf = None
        elif pos or self._buf is None:
            self._buf = bytearray(buf[pos:])

    def eof_received(self) -> bool | None:
        return None  # close the transport: a half-closed WebSocket is of no use

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self._transport = None
        self._buf = self._frag = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        for waiter in (self._closed_waiter, self._drain_waiter, self._probe):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._hub.lost(self)
        if self._pump is None and self.attached:
            self._hub.spawn(self._hub.gone(self))
        # else: the pump detaches the peer once the messages it holds are handled

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._drain_waiter = None

    # -- frames ----------------------------------------------------------------------

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode >= OP_CLOSE:
            self._control(opcode, payload)
            return
        if opcode == OP_CONTINUATION:
            if self._frag is None:
                raise FrameError(1002, "continuation frame with no message to continue")
            self._frag.append(payload)
            if sum(map(len, self._frag)) > self._hub.max_frame_bytes:
                raise FrameError(1009, "message exceeds the frame size limit")
            if not fin:
                return
            payload, opcode, self._frag = b"".join(self._frag), self._frag_op, None
        elif self._frag is not None:
            raise FrameError(1002, "new message before the fragmented one ended")
        elif not fin:
            self._frag, self._frag_op = [payload], opcode
            return
        if not self._discard:
            self._deliver(opcode, payload)

    def _control(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if opcode == OP_PING:
            if self._state == _OPEN and transport is not None:
                transport.write(build_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            code = parse_close(payload)
            if self._state == _OPEN and transport is not None:
                # Echo the peer's code (RFC 6455 §5.5.1), then the server drops TCP.
                echo = b"" if code == 1005 else payload[:2]
                transport.write(build_frame(OP_CLOSE, echo))
            self._state, self._skip = _CLOSING, -1
            if transport is not None:
                transport.close()
        # OP_PONG: the peer is alive, which data_received has noted already

    def _deliver(self, opcode: int, payload: bytes) -> None:
        if self._inbox is None:
            self._inbox = collections.deque()
        self._inbox.append((opcode, payload))
        self._inbox_bytes += len(payload)
        if self._inbox_bytes > _INBOX_HIGH_BYTES and self._transport is not None:
            self._transport.pause_reading()
        if self._pump is None and self._serving:
            self._pump = self._hub.spawn(self._run_inbox())

    def attach(self) -> bool:
        """The broker lists this peer now: it must be detached when the connection
        ends. ``False`` if it has ended already (the caller detaches it then)."""
        if self._state == _CLOSED:
            return False
        self.attached = True
        return True

    def serve(self) -> None:
        """Hand the peer's messages to the broker: those that came meanwhile, then each
        as it comes."""
        if self._state == _CLOSED:
            return  # connection_lost has detached it
        self._serving = True
        if self._inbox and self._pump is None:
            self._pump = self._hub.spawn(self._run_inbox())

    async def _run_inbox(self) -> None:
        """Hand the peer's messages to the broker in order; exit once none waits."""
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox and not self._discard:
                opcode, payload = inbox.popleft()
                self._inbox_bytes -= len(payload)
                if self._inbox_bytes <= _INBOX_HIGH_BYTES // 2 and self._transport is not None:
                    self._transport.resume_reading()
                await self._hub.message(self, opcode == OP_TEXT, payload)
        finally:
            self._pump = None
            if not inbox:
                self._inbox = None
            if self._state == _CLOSED:
                await self._hub.gone(self)

    def _fail(self, code: int, reason: str) -> None:
        if self._state != _OPEN:
            return  # closing already; one reason is enough
        logger.info("closing %s %s: %s", self.role.value, self.peer_id, reason)
        self.start_close(code, reason)

    # -- takeover.PeerConnection -----------------------------------------------------

    @property
    def down(self) -> bool:
        """Whether the connection has ended."""
        return self._state == _CLOSED

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed (nothing more can be sent)."""
        return self._state != _OPEN

    async def send(self, message: Message) -> bool:
        transport = self._transport
        if self._state != _OPEN or transport is None:
            return False
        transport.write(build_frame(OP_BINARY, encode(message)))
        if self._write_paused:
            if self._drain_waiter is None:
                self._drain_waiter = self._hub.loop.create_future()
            await self._drain_waiter
            return self._state != _CLOSED
        return True

    def ping(self) -> None:
        """A heartbeat ping; ``heard_at`` moves when anything comes back."""
        if self._state == _OPEN and self._transport is not None:
            self._transport.write(_PING)

    def start_close(self, code: int, reason: str) -> None:
        """Send our close frame; drop the connection once the peer answers it, or after
        ``CLOSE_TIMEOUT_S``. Frames still arriving are not handled."""
        self._discard = True
        if self._state != _OPEN or self._transport is None:
            return
        self._state = _CLOSING
        self._transport.write(build_frame(OP_CLOSE, close_payload(code, reason)))
        self._close_timer = self._hub.loop.call_later(CLOSE_TIMEOUT_S, self.abort)

    def abort(self) -> None:
        """Drop the TCP connection now, with no close handshake (a peer that went silent)."""
        self._discard = True
        if self._transport is not None:
            if self._state == _OPEN:
                self._state = _CLOSING  # nothing more is written to it
            self._transport.abort()

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason``; returns once the connection is down."""
        self.start_close(code, reason)
        if self._state == _CLOSED:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._hub.loop.create_future()
        await asyncio.shield(self._closed_waiter)

    async def alive(self, timeout_s: float) -> bool:
        """Ping the peer: whether anything comes back from it within ``timeout_s``."""
        if self._state != _OPEN:
            return False
        if self._probe is None or self._probe.done():
            self._probe = self._hub.loop.create_future()
        probe = self._probe
        self.ping()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(probe)
        except TimeoutError:
            return False
        finally:
            if self._probe is probe:
                self._probe = None
        return self._state == _OPEN
