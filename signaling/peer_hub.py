"""What all of one app's connected peers share: the message hand-off to the broker, and
one sweep for every peer's timed duties.

Each connected peer must be pinged after ``heartbeat_s`` of silence and dropped if the
ping goes unanswered for half that; closed (4001) once its token expires (the token's
clock is the app clock, which can step, so it is re-read at least every
``expiry_check_s``); and, with TURN, sent fresh credentials at half their lifetime.
aiohttp's heartbeat keeps a timer per connection, and per-peer timers or sleeping tasks
cost memory for every idle peer (a task and its frames ~2 KB, a timer handle with its
context ~300 B). Here one timer walks all peers every ``tick_s`` (a quarter of the
shortest interval, so each duty runs at most a quarter late), a slice at a time: at
10,000 peers a pass costs a few milliseconds in all, and a peer that keeps pinging us,
as Tandem's peers do every 15 s, is never pinged back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shared.close_codes import CloseCode
from shared.codec import decode
from shared.errors import ProtocolError
from shared.messages import ErrorCode, SignalError, Welcome
from signaling.broker import Broker
from signaling.metrics import SignalingMetrics
from signaling.settings import SignalingSettings
from signaling.turn_credentials import ice_servers
from signaling.ws_peer import CLOSE_TIMEOUT_S, PeerSocket

__all__ = ["PeerHub", "welcome"]

logger = logging.getLogger(__name__)

# A pass over many peers is cut into slices (at most _MAX_SLICES, of at least
# _SLICE_PEERS peers) spread over the tick: pinging 10,000 silent peers at once would
# hold the loop for tens of milliseconds, and every offer waiting behind it.
_SLICE_PEERS = 500
_MAX_SLICES = 20


def welcome(settings: SignalingSettings, peer: PeerSocket, now: float) -> Welcome:
    """The ``Welcome`` for ``peer``, with TURN credentials minted ``now`` (if TURN is
    set) and its connection's resume secret."""
    secret = settings.turn_secret.get_secret_value() if settings.turn_secret else None
    servers = ice_servers(
        stun_urls=settings.stun_urls,
        turn_urls=settings.turn_urls,
        turn_secret=secret,
        peer_id=peer.peer_id,
        now=now,
        ttl_s=settings.turn_ttl_s,
    )
    return Welcome(
        peer_id=peer.peer_id, role=peer.role, ice_servers=servers, resume=peer.resume_secret
    )


class PeerHub:
    """One app's connected peers: their messages to the broker, their timed duties."""

    def __init__(
        self,
        *,
        settings: SignalingSettings,
        broker: Broker,
        metrics: SignalingMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.max_frame_bytes = settings.max_frame_bytes
        self._settings = settings
        self._broker = broker
        self._metrics = metrics
        self._clock = clock
        self._heartbeat_s = settings.heartbeat_s
        self.refresh_s = settings.turn_ttl_s / 2 if settings.turn_urls else None
        """Seconds between TURN credential pushes; ``None`` without TURN."""
        intervals = [settings.expiry_check_s, settings.heartbeat_s]
        if self.refresh_s is not None:
            intervals.append(self.refresh_s)
        self.tick_s = min(intervals) / 4
        self._peers: set[PeerSocket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._pass: tuple[PeerSocket, ...] = ()  # the peers of the pass under way
        self._pass_at = 0
        self._slices = 1

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task the hub holds (and waits for at shutdown)."""
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- peers -----------------------------------------------------------------------

    async def admit(self, peer: PeerSocket, remote: str | None, resume: bytes | None) -> None:
        """Attach a newly upgraded ``peer`` to the broker and welcome it; refuse it
        (4009) if its peer id is held by a live connection. ``resume``: the digest of
        the resume secret it presented (``signaling.resume``)."""
        if not await self._broker.attach(peer, resume):
            logger.warning(
                "refused a second %s connection as %s from %s: that peer id is held by a "
                "live connection (two devices sharing one token?)",
                peer.role.value,
                peer.peer_id,
                remote,
            )
            self._metrics.closes.labels(reason="peer_id_in_use").inc()
            await peer.close(
                CloseCode.PEER_ID_IN_USE, f"peer id {peer.peer_id[:64]} is connected elsewhere"
            )
            return
        if not peer.attach():  # the peer left while the broker was attaching it
            await self._broker.detach(peer)
            return
        self._metrics.connections.labels(role=peer.role.value).inc()
        self.add(peer)
        await peer.send(welcome(self._settings, peer, self._clock()))
        peer.serve()

    def add(self, peer: PeerSocket) -> None:
        """Start ``peer``'s timed duties (it is attached to the broker)."""
        if self.refresh_s is not None:
            peer.refresh_at = self.loop.time() + self.refresh_s
        self._peers.add(peer)
        if self._timer is None:
            self._timer = self.loop.call_later(self.tick_s, self._sweep)

    def lost(self, peer: PeerSocket) -> None:
        """``peer``'s connection is down: no more duties."""
        self._peers.discard(peer)

    async def gone(self, peer: PeerSocket) -> None:
        """After an attached peer's connection ended and its messages were handled."""
        await self._broker.detach(peer)

    async def message(self, peer: PeerSocket, text: bool, payload: bytes) -> None:
        """One whole message from ``peer``: decoded and handed to the broker."""
        if text:
            peer.start_close(CloseCode.POLICY_VIOLATION, "binary frames only")
            logger.info("closing %s %s: binary frames only", peer.role.value, peer.peer_id)
            return
        try:
            message = decode(payload, max_frame_bytes=self.max_frame_bytes)
        except ProtocolError as exc:
            reason = f"undecodable frame ({type(exc).__name__})"
            logger.info("closing %s %s: %s", peer.role.value, peer.peer_id, reason)
            peer.start_close(CloseCode.POLICY_VIOLATION, reason)
            return
        try:
            await self._broker.handle(peer, message)
        except Exception:  # this peer's message only: log, tell the peer, keep serving it
            logger.exception(
                "%s %s: failed to handle %s", peer.role.value, peer.peer_id, message.type_tag
            )
            await peer.send(SignalError(code=ErrorCode.INTERNAL, message="internal error"))

    # -- the sweep -------------------------------------------------------------------

    def _sweep(self) -> None:
        """Visit the next slice of the current pass over all peers."""
        self._timer = None
        if not self._pass:
            self._pass, self._pass_at = tuple(self._peers), 0
            self._slices = max(1, min(_MAX_SLICES, len(self._pass) // _SLICE_PEERS))
        size = -(-len(self._pass) // self._slices)
        chunk = self._pass[self._pass_at : self._pass_at + size]
        self._pass_at += size
        if self._pass_at >= len(self._pass):
            self._pass = ()
        self._visit(chunk)
        if self._peers or self._pass:
            self._timer = self.loop.call_later(self.tick_s / self._slices, self._sweep)

    def _visit(self, peers: tuple[PeerSocket, ...]) -> None:
        now, wall = self.loop.time(), self._clock()
        silence_s, pong_wait_s = self._heartbeat_s, self._heartbeat_s / 2
        for peer in peers:
            if peer.closed:
                continue
            if wall >= peer.expires_at:
                self._expire(peer)
            elif peer.ping_at:
                if now - peer.ping_at >= pong_wait_s:
                    logger.info(
                        "dropping %s %s: no pong within %g s",
                        peer.role.value,
                        peer.peer_id,
                        pong_wait_s,
                    )
                    peer.abort()
                    continue
            elif now - peer.heard_at >= silence_s:
                peer.ping()
                peer.ping_at = now
            if peer.refresh_at and now >= peer.refresh_at and self.refresh_s is not None:
                peer.refresh_at = now + self.refresh_s
                self.spawn(self._refresh(peer))

    def _expire(self, peer: PeerSocket) -> None:
        logger.info("closing %s %s: its token expired", peer.role.value, peer.peer_id)
        self._metrics.closes.labels(reason="token_expired").inc()
        peer.start_close(CloseCode.TOKEN_EXPIRED, "token expired: reconnect with a renewed token")

    async def _refresh(self, peer: PeerSocket) -> None:
        fresh = welcome(self._settings, peer, self._clock())
        if not await peer.send(fresh):
            peer.refresh_at = 0.0

    async def aclose(self) -> None:
        """Stop the sweep; let detaches and message hand-offs in flight finish (the
        registry must hear of every peer that left), then drop what is still open."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pass = ()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
        for peer in list(self._peers):
            peer.abort()
