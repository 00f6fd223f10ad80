"""The relayed sessions a ``SignalingClient`` carries, and how each is keyed.

A relayed session (``link.relay_link``) travels over this peer's signaling WebSocket,
so the client routes its frames; it is also end to end encrypted (``link.relay_crypto``):
the edge's key goes in ``RelayOpen``, the worker's in ``RelayAccept``, and a session
without a usable key does not exist. That bookkeeping (the links by session id, the
handshakes and the requests waiting for a worker) is one concern, kept here apart from
the connection's own life (``link.signaling_client``), which hands every relay frame in
through ``deliver`` and ends every session when the connection is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from link.framed import DEFAULT_QUEUED_FRAMES
from link.relay_crypto import RelayCipher, RelayHandshake, RelayKeyRefused
from link.relay_link import RelayLink
from link.signaling_replies import SignalingRefused, SignalingUnavailable, settle
from shared.messages import (
    ErrorCode,
    Message,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
)

__all__ = ["SignalingRelays"]

log = logging.getLogger(__name__)


class SignalingRelays:
    """One signaling connection's relayed sessions, from this peer's side."""

    def __init__(self, send: Callable[[Message], Awaitable[None]]) -> None:
        """``send``: the client's, raising ``SignalingUnavailable`` while disconnected."""
        self._send = send
        self._pending: dict[str, asyncio.Future[RelayAccept]] = {}
        self._handshakes: dict[str, RelayHandshake] = {}
        self._relays: dict[str, RelayLink] = {}

    def link(
        self,
        session_id: str,
        *,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        cipher: RelayCipher | None = None,
        label: str = "",
    ) -> RelayLink:
        """A link for relayed session ``session_id``; its frames are routed to it from now
        on. It carries nothing until it has a ``cipher`` (here, or ``RelayLink.secure``)."""
        link = RelayLink(
            session_id,
            self._send,
            on_close=self._forget,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            cipher=cipher,
            label=label,
        )
        self._relays[session_id] = link
        return link

    def _forget(self, session_id: str) -> None:
        self._relays.pop(session_id, None)

    async def accept(
        self,
        request: RelayOpen,
        *,
        model: str,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        label: str = "",
    ) -> RelayLink:
        """The worker's side of ``open``: key the session from the edge's
        ``request.key``, answer ``RelayAccept`` with ours, return the link.

        ``RelayKeyRefused`` (after telling the edge, with ``RelayClose``) if the edge
        sent no usable key: a relayed session is end-to-end encrypted or does not exist.
        """
        handshake = RelayHandshake(request.session_id, Role.WORKER)
        try:
            cipher = handshake.cipher(request.key)
        except RelayKeyRefused as exc:
            with contextlib.suppress(SignalingUnavailable):
                await self._send(RelayClose(session_id=request.session_id, reason=str(exc)[:256]))
            raise
        link = self.link(
            request.session_id,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            cipher=cipher,
            label=label,
        )
        try:
            await self._send(
                RelayAccept(session_id=request.session_id, model=model, key=handshake.public_key)
            )
        except BaseException:
            await link.aclose()
            raise
        return link

    async def open(
        self,
        session_id: str,
        *,
        model: str,
        timeout_s: float,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        avoid: tuple[str, ...] = (),
    ) -> tuple[RelayLink, RelayAccept]:
        """Ask signaling for a relayed session to a worker (none of ``avoid``); the link
        once one accepts."""
        future: asyncio.Future[RelayAccept] = asyncio.get_running_loop().create_future()
        handshake = RelayHandshake(session_id, Role.EDGE)
        self._pending[session_id] = future
        self._handshakes[session_id] = handshake
        link = self.link(
            session_id, max_frame_bytes=max_frame_bytes, max_queued_frames=max_queued_frames
        )
        try:
            opening = RelayOpen(
                session_id=session_id, model=model, avoid=avoid, key=handshake.public_key
            )
            await self._send(opening)
            async with asyncio.timeout(timeout_s):
                accept = await future
        except BaseException as exc:
            await link.aclose()
            if isinstance(exc, TimeoutError):
                raise SignalingUnavailable("no worker accepted the relay in time") from exc
            raise
        finally:
            self._pending.pop(session_id, None)
            self._handshakes.pop(session_id, None)
        link.rename(accept.peer_id)
        return link, accept

    def deliver(self, message: Message) -> bool:
        """Route ``message`` if it belongs to a relayed session (a frame, a close, an
        accept, or a refusal of a relay request); ``False`` if it is none of those."""
        if isinstance(message, RelayData):
            relay = self._relays.get(message.session_id)
            if relay is not None:
                relay.feed(message.data)
            return True
        if isinstance(message, RelayClose):
            relay = self._relays.pop(message.session_id, None)
            if relay is not None:
                relay.closed_by_peer()
            return True
        if isinstance(message, RelayAccept):
            self._key(message)  # now, before a frame of this session can arrive
        return settle(self._pending, RelayAccept, message)

    def _key(self, accept: RelayAccept) -> None:
        """Key the edge's link of the session ``accept`` answers, from the worker's key;
        without a usable key, fail the ``open`` waiting on it instead."""
        handshake = self._handshakes.pop(accept.session_id, None)
        future = self._pending.get(accept.session_id)
        link = self._relays.get(accept.session_id)
        if handshake is None or future is None or future.done() or link is None:
            return
        try:
            link.secure(handshake.cipher(accept.key))
        except RelayKeyRefused as exc:
            log.error("relayed session to worker %s refused: %s", accept.peer_id, exc)
            future.set_exception(SignalingRefused(ErrorCode.PROTOCOL_ERROR, str(exc)))

    def connection_lost(self) -> None:
        """End every session: their path was the connection that is gone."""
        for relay in list(self._relays.values()):
            relay.closed_by_peer()
        self._relays.clear()
