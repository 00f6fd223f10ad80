"""One live connection per peer id, and when a newcomer may take a held id over.

The broker (``signaling.broker``) routes messages between connections; who holds which
peer id is a concern of its own, with its own races, so it lives here. A peer id (per
role: a host may run an edge and a worker under one name) belongs to one live
connection. A second connection claiming it takes over at once if it presents the first
one's resume secret (the same peer process, reconnected after a network change:
``signaling.resume``; the holder is closed with 4010), else only if the first no longer
answers a ping within ``takeover_probe_s`` (a peer that reconnected before its old
socket was noticed dead); otherwise the newcomer is refused, so that two devices
sharing one token do not knock each other off in turns.

A replaced connection is forgotten at once (through the broker's ``forget``, which also
ends its sessions) and closed in the background: closing waits for a close handshake
that a dead peer never sends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.close_codes import CloseCode
from shared.messages import Message, Role

__all__ = ["CLOSE_NORMAL", "Connections", "PeerConnection"]

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000


class PeerConnection(Protocol):
    """One authenticated peer's connection to signaling, whatever carries its frames."""

    peer_id: str
    role: Role

    async def send(self, message: Message) -> bool:
        """Send one message; ``False`` if the peer is gone (never raises for that)."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with a WebSocket close code and a short reason."""
        ...

    async def alive(self, timeout_s: float) -> bool:
        """Whether the peer answers a ping within ``timeout_s`` (never raises)."""
        ...

    def resumed_by(self, presented: bytes | None) -> bool:
        """Whether ``presented`` is the digest of this connection's resume secret
        (constant time; ``False`` for ``None``, and where the secret is not known here)."""
        ...


class Connections:
    """The live connection of each ``(role, peer_id)`` on this server."""

    def __init__(
        self,
        *,
        forget: Callable[[PeerConnection], Awaitable[None]],
        takeover_probe_s: float = 5.0,
    ) -> None:
        """``forget``: the broker's, run when a connection is replaced; it must ``remove``
        the connection (and may await other clean-up)."""
        self._forget = forget
        self.takeover_probe_s = takeover_probe_s
        self._probing: set[tuple[Role, str]] = set()  # peer ids whose holder is being pinged
        # Peer ids whose holder is being forgotten for a newcomer (``replace`` awaits):
        # no third connection may slip in meanwhile.
        self._handing_over: set[tuple[Role, str]] = set()
        self._conns: dict[tuple[Role, str], PeerConnection] = {}
        # Closing a replaced connection waits for its close handshake, which a dead peer
        # never sends; those closes run here so the new connection is not held up.
        self._closing: set[asyncio.Task[None]] = set()

    def __contains__(self, key: tuple[Role, str]) -> bool:
        return key in self._conns

    def get(self, role: Role, peer_id: str) -> PeerConnection | None:
        return self._conns.get((role, peer_id))

    def all(self) -> list[PeerConnection]:
        return list(self._conns.values())

    def count(self, role: Role) -> int:
        """How many peers of ``role`` are connected now."""
        return sum(1 for r, _ in self._conns if r is role)

    def is_current(self, conn: PeerConnection) -> bool:
        """Whether ``conn`` is the live connection of its peer (not replaced, not gone)."""
        return self._conns.get((conn.role, conn.peer_id)) is conn

    def remove(self, conn: PeerConnection) -> None:
        """Forget ``conn``, the live connection of its peer."""
        del self._conns[(conn.role, conn.peer_id)]

    async def attach(self, conn: PeerConnection, resume: bytes | None = None) -> bool:
        """Make ``conn`` reachable; ``False`` (and nothing changed) if its peer id is held
        by a connection that still answers, or is being probed for another newcomer.

        ``resume``: the digest of the resume secret ``conn`` presented. If it is the
        holder's, the holder is closed (4010) and replaced at once, with no probe. Else a
        holder that does not answer within ``takeover_probe_s`` is closed and replaced.
        """
        key = (conn.role, conn.peer_id)
        if key in self._handing_over:
            return False  # its holder is being replaced by another newcomer right now
        old = self._conns.get(key)
        if old is not None and old.resumed_by(resume):
            logger.info(
                "%s %s resumed on a new connection: closing its older one at once",
                conn.role.value,
                conn.peer_id,
            )
            await self.replace(old, CloseCode.RESUMED, "resumed on a newer connection")
        elif old is not None:
            alive = await self.probed(key, lambda: old.alive(self.takeover_probe_s))
            if alive is None:
                return False
            current = self._conns.get(key)
            if key in self._handing_over or (current is not None and (current is not old or alive)):
                return False
            if current is not None:
                logger.info(
                    "%s %s reconnected; its older connection is silent: closing it",
                    conn.role.value,
                    conn.peer_id,
                )
                await self.replace(current, CLOSE_NORMAL, "replaced by a newer connection")
        self._conns[key] = conn
        logger.debug("%s %s attached", conn.role.value, conn.peer_id)
        return True

    async def probed(
        self, key: tuple[Role, str], ping: Callable[[], Awaitable[bool]]
    ) -> bool | None:
        """``ping``'s answer (does ``key``'s holder still answer?), or ``None`` without
        pinging if a probe of that holder for another newcomer is already under way:
        one probe per id at a time, whether the holder is here or on another instance."""
        if key in self._probing:
            return None
        self._probing.add(key)
        try:
            return await ping()
        finally:
            self._probing.discard(key)

    async def replace(self, old: PeerConnection, code: int, reason: str) -> None:
        """Forget ``old`` now and close it in the background: closing waits for a close
        handshake that a dead peer never sends, and the newcomer must not wait for it.
        Until ``old`` is forgotten, other newcomers for its id are refused; the caller
        attaches its own at once after (nothing awaited in between)."""
        key = (old.role, old.peer_id)
        self._handing_over.add(key)
        try:
            await self._forget(old)
        finally:
            self._handing_over.discard(key)
        task = asyncio.create_task(old.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @property
    def closing(self) -> list[asyncio.Task[None]]:
        """The background closes of replaced connections still under way."""
        return list(self._closing)

    def cancel_closing(self) -> None:
        """Cancel the background closes (shutting down: nobody waits for them)."""
        for task in self._closing:
            task.cancel()
