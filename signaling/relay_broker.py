"""The broker's relayed sessions: relaying through signaling, the path of last resort.

An edge that cannot reach a worker over WebRTC (direct or TURN) asks for a relayed
session (``RelayOpen``); the broker picks a worker as for an offer, the worker accepts
(``RelayAccept``), and from then on ``RelayData`` frames go from one member to the other
through a bounded ``RelayPipe`` per member, paced per session (``RelayTable``), until
either side closes (``RelayClose``) or goes away. Only sessions brokered here exist;
a frame for any other is refused.

``RelayBroker`` is that half of ``Broker`` (its base class), apart because it stands
alone: it needs of the rest only the hooks below (find a peer, pick a worker, say that
none serves a model), which ``Broker`` (and ``ClusterBroker``, for peers on other
instances) provides. It is not used on its own.
"""

from __future__ import annotations

import asyncio
import logging

from shared.messages import (
    ErrorCode,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
    SignalError,
)
from signaling.metrics import SignalingMetrics
from signaling.pending_offers import OfferTable
from signaling.relay_pipe import RelayPipe
from signaling.relay_table import RelaySession, RelayTable
from signaling.takeover import PeerConnection

__all__ = ["RelayBroker", "refuse"]

logger = logging.getLogger(__name__)


class RelayBroker:
    """The relayed-session messages of ``Broker``: open, accept, data, close."""

    # Set by ``Broker.__init__``.
    _relays: RelayTable
    _offers: OfferTable
    _metrics: SignalingMetrics

    async def _peer(self, role: Role, peer_id: str) -> PeerConnection | None:
        """The connection to send ``peer_id`` messages through (``Broker``)."""
        raise NotImplementedError

    async def _worker_for(self, model: str, avoid: tuple[str, ...] = ()) -> PeerConnection | None:
        """The connected worker to send a new session for ``model`` to (``Broker``)."""
        raise NotImplementedError

    async def _no_worker(self, edge: PeerConnection, model: str, session_id: str) -> None:
        """Tell ``edge`` that no worker serves ``model`` (``Broker``)."""
        raise NotImplementedError

    def _paces(self, sender: PeerConnection) -> bool:
        """Whether relayed frames from ``sender`` are paced here (where it is read)."""
        return True

    async def _end_relays_of(self, role: Role, peer_id: str) -> None:
        """End the relayed sessions of a peer that went away."""
        for relay in self._relays.of_peer(role, peer_id):
            close = RelayClose(session_id=relay.session_id, reason=f"{role.value} went away")
            if relay.pipes:
                self._end_relay(relay, closer=role, close=close)
                continue
            self._relays.close(relay.session_id)
            other = await self._peer(*relay.other(role))
            if other is not None:
                await other.send(close)

    async def _relay_open(self, edge: PeerConnection, request: RelayOpen) -> None:
        if self._relays.get(request.session_id) is not None or self._offers.get(request.session_id):
            await refuse(edge, "session_id is already in use", request.session_id)
            return
        if not self._relays.can_open(edge.peer_id):
            limit = self._relays.max_per_edge
            why = (
                "relaying through signaling is off here (--relay-max-sessions-per-edge 0)"
                if limit == 0
                else f"this edge already holds {limit} relayed sessions (at most {limit}: "
                "--relay-max-sessions-per-edge)"
            )
            await edge.send(
                SignalError(code=ErrorCode.OVERLOADED, message=why, session_id=request.session_id)
            )
            return
        worker = await self._worker_for(request.model, request.avoid)
        if worker is not None:
            self._relays.open(
                request.session_id,
                edge_id=edge.peer_id,
                worker_id=worker.peer_id,
                now=asyncio.get_running_loop().time(),
            )
            forwarded = request.model_copy(update={"peer_id": edge.peer_id})
            if await worker.send(forwarded):
                self._metrics.offers.labels(result="relay").inc()
                return
            self._relays.close(request.session_id)
        await self._no_worker(edge, request.model, request.session_id)

    async def _relay_accept(self, worker: PeerConnection, accept: RelayAccept) -> None:
        relay = self._relays.get(accept.session_id)
        if relay is None or relay.worker_id != worker.peer_id or relay.accepted:
            await refuse(worker, "no relay request with this id for this worker", accept.session_id)
            return
        edge = await self._peer(Role.EDGE, relay.edge_id)
        if edge is None:
            self._relays.close(accept.session_id)
            await worker.send(RelayClose(session_id=accept.session_id, reason="edge went away"))
            return
        relay.accepted = True
        limit = self._relays.buffer_bytes
        relay.pipes = {
            role: RelayPipe(conn.send, limit_bytes=limit, name=f"relay-{role.value}-{conn.peer_id}")
            for role, conn in ((Role.EDGE, edge), (Role.WORKER, worker))
        }
        # Through the edge's pipe, so that it arrives before the worker's first frame
        # and a slow edge never holds up this worker's connection.
        relay.pipes[Role.EDGE].put(accept.model_copy(update={"peer_id": worker.peer_id}))

    async def _relay_data(self, sender: PeerConnection, data: RelayData) -> None:
        relay = self._relays.get(data.session_id)
        if relay is None or not relay.accepted or not relay.member(sender.role, sender.peer_id):
            # Not a session we brokered for this peer (or it just ended): refuse it.
            await sender.send(
                RelayClose(session_id=data.session_id, reason="no such relayed session")
            )
            return
        if self._paces(sender):
            async with relay.lock:  # pace this session only; other peers are not held up
                wait = relay.bucket.delay(len(data.data), asyncio.get_running_loop().time())
                if wait > 0:
                    await asyncio.sleep(wait)
        if self._relays.get(data.session_id) is not relay:
            return  # it ended while this frame waited for its pace
        receiver, _ = relay.other(sender.role)
        if relay.pipes[receiver].put(data):  # queued: this loop never waits on the receiver
            return
        self._metrics.relay_overflows.inc()
        logger.info(
            "relayed session %s dropped: its %s read too slowly (over %d bytes waiting)",
            relay.session_id,
            receiver.value,
            self._relays.buffer_bytes,
        )
        # Only this session ends; both members hear why (the slow one when it reads on).
        close = RelayClose(
            session_id=relay.session_id,
            reason=f"relay buffer full: the {receiver.value} reads too slowly",
        )
        self._relays.close(relay.session_id)
        relay.pipes[receiver].abort(close)
        relay.pipes[sender.role].finish(close)

    async def _relay_close(self, sender: PeerConnection, close: RelayClose) -> None:
        relay = self._relays.get(close.session_id)
        if relay is None or not relay.member(sender.role, sender.peer_id):
            return
        if relay.pipes:
            self._end_relay(relay, closer=sender.role, close=close)
            return
        self._relays.close(close.session_id)
        other = await self._peer(*relay.other(sender.role))
        if other is not None:
            await other.send(close)

    def _end_relay(self, relay: RelaySession, *, closer: Role, close: RelayClose) -> None:
        """End an accepted session: nothing more to ``closer``; the other member gets
        what is already queued for it, then ``close``."""
        self._relays.close(relay.session_id)
        relay.pipes[closer].abort()
        relay.pipes[relay.other(closer)[0]].finish(close)


async def refuse(conn: PeerConnection, message: str, session_id: str | None = None) -> None:
    """Send ``conn`` a ``bad_request`` ``SignalError`` (the broker's every refusal). Here,
    not in ``broker``, so that the two halves share it without importing each other."""
    await conn.send(SignalError(code=ErrorCode.BAD_REQUEST, message=message, session_id=session_id))
