"""Who is connected, and the offer/answer exchange between edges and workers.

The broker owns the table of live peers (``takeover.Connections``), the offers waiting
for an answer and the relayed sessions; it speaks to peers only through
``PeerConnection`` (send a message, close), so it knows nothing of WebSockets.
``handlers`` authenticates and decodes, then hands each message here.

Peers are keyed by ``(role, peer_id)``: a host may run an edge and a worker under one
name. A peer id belongs to one live connection; when a second connection claiming it
may take over (its resume secret, or a holder that no longer answers a ping) is decided
by ``signaling.takeover``, which holds the table of live connections for the broker.

Each offer costs the chosen worker a peer connection (and a TURN allocation), so one edge
may have at most ``max_pending_offers_per_edge`` offers waiting for answers at once
(more: ``SignalError`` ``overloaded``); relayed sessions have their own cap per edge
(``RelayTable``).

The relayed sessions' messages (relaying through signaling, the last resort) are handled
by ``Broker``'s base class, ``signaling.relay_broker.RelayBroker``; this module is the
rest: peers, dispatch, registration, offers and answers.
"""

from __future__ import annotations

import asyncio
import logging

from shared.messages import (
    Answer,
    ErrorCode,
    LoadReport,
    Message,
    Offer,
    Register,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
    SignalError,
)
from signaling.matchmaking import choose_worker
from signaling.metrics import SignalingMetrics
from signaling.pending_offers import OfferTable
from signaling.registry.base import Registry, WorkerInfo
from signaling.relay_broker import RelayBroker, refuse
from signaling.relay_table import RelayTable
from signaling.takeover import Connections, PeerConnection

__all__ = ["CLOSE_GOING_AWAY", "Broker"]

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001


class Broker(RelayBroker):
    """Routes signaling messages between the connected edges and workers."""

    def __init__(
        self,
        *,
        registry: Registry,
        offers: OfferTable,
        metrics: SignalingMetrics,
        relays: RelayTable | None = None,
        takeover_probe_s: float = 5.0,
        max_model_name_chars: int = 256,
        max_pending_offers_per_edge: int = 4,
    ) -> None:
        self._max_model_name_chars = max_model_name_chars
        # ``is None``, not ``or``: a RelayTable has a length, so an empty one (every table,
        # at construction) is falsy, and ``or`` silently replaced the configured table
        # (--relay-max-sessions-per-edge, --relay-bytes-per-s, ...) with this default.
        self._relays = (
            relays if relays is not None else RelayTable(bytes_per_s=1_000_000, max_per_edge=4)
        )
        self._registry = registry
        self._offers = offers
        self._max_pending = max_pending_offers_per_edge
        # Session ids of each edge's offers, pruned against the offer table (which alone
        # knows what was answered or expired) whenever the edge offers again.
        self._offers_of: dict[str, set[str]] = {}
        self._metrics = metrics
        self._peers = Connections(forget=self._forget, takeover_probe_s=takeover_probe_s)

    def count(self, role: Role) -> int:
        """How many peers of ``role`` are connected now."""
        return self._peers.count(role)

    def is_current(self, conn: PeerConnection) -> bool:
        """Whether ``conn`` is the live connection of its peer (not replaced, not gone)."""
        return self._peers.is_current(conn)

    async def attach(self, conn: PeerConnection, resume: bytes | None = None) -> bool:
        """Make ``conn`` reachable; ``False`` (and nothing changed) if its peer id is
        held, and may not be taken over (``Connections.attach``)."""
        return await self._peers.attach(conn, resume)

    async def detach(self, conn: PeerConnection) -> None:
        """Forget ``conn`` after its connection ended; a no-op if it was replaced."""
        if self.is_current(conn):
            await self._forget(conn)
            logger.debug("%s %s detached", conn.role.value, conn.peer_id)

    async def _forget(self, conn: PeerConnection) -> None:
        self._peers.remove(conn)
        if conn.role is Role.WORKER:
            await self._registry.remove(conn.peer_id)
        await self._end_sessions_of(conn.role, conn.peer_id)

    async def _peer(self, role: Role, peer_id: str) -> PeerConnection | None:
        """The connection to send ``peer_id`` messages through, if it is connected."""
        return self._peers.get(role, peer_id)

    def _matchable(self, workers: list[WorkerInfo]) -> list[WorkerInfo]:
        """The registered workers an offer may be sent to from here."""
        # Only workers connected to this server; a shared registry may also list one
        # whose removal is in flight.
        return [w for w in workers if (Role.WORKER, w.peer_id) in self._peers]

    async def _end_sessions_of(self, role: Role, peer_id: str) -> None:
        """End the relayed sessions and pending offers of a peer that went away."""
        await self._end_relays_of(role, peer_id)
        if role is Role.EDGE:
            self._offers.drop_edge(peer_id)
            self._offers_of.pop(peer_id, None)
            return
        for pending in self._offers.drop_worker(peer_id):
            edge = await self._peer(Role.EDGE, pending.edge_id)
            if edge is not None:
                await edge.send(
                    SignalError(
                        code=ErrorCode.NO_WORKER,
                        message=f"worker {peer_id} went away before answering",
                        session_id=pending.session_id,
                    )
                )

    async def handle(self, conn: PeerConnection, message: Message) -> None:
        """Act on one message from ``conn``; refusals go back to the sender as ``SignalError``."""
        if not self.is_current(conn):
            return  # a replaced connection's last words; its successor speaks for it now
        await self._dispatch(conn, message)

    async def _dispatch(self, conn: PeerConnection, message: Message) -> None:
        problem = self._bad_model_name(message)
        if problem is not None:
            await refuse(conn, problem, getattr(message, "session_id", None))
            return
        if conn.role is Role.WORKER and isinstance(message, Register):
            await self._register(conn, message)
        elif conn.role is Role.WORKER and isinstance(message, LoadReport):
            await self._load_report(conn, message)
        elif conn.role is Role.WORKER and isinstance(message, Answer):
            await self._answer(conn, message)
        elif conn.role is Role.EDGE and isinstance(message, Offer):
            await self._offer(conn, message)
        elif isinstance(message, RelayData):
            await self._relay_data(conn, message)
        elif conn.role is Role.EDGE and isinstance(message, RelayOpen):
            await self._relay_open(conn, message)
        elif conn.role is Role.WORKER and isinstance(message, RelayAccept):
            await self._relay_accept(conn, message)
        elif isinstance(message, RelayClose):
            await self._relay_close(conn, message)
        else:
            await refuse(conn, f"{conn.role.value} peers may not send {message.type_tag}")

    def _bad_model_name(self, message: Message) -> str | None:
        """Why ``message`` names a model too long to match or echo back, if it does."""
        if isinstance(message, Register):
            names: tuple[str, ...] = message.models
        elif isinstance(message, Offer | RelayOpen):
            names = (message.model,)
        else:
            return None
        longest = max((len(name) for name in names), default=0)
        if longest <= self._max_model_name_chars:
            return None
        return (
            f"model name of {longest} characters; at most {self._max_model_name_chars} are allowed"
        )

    async def _register(self, worker: PeerConnection, message: Register) -> None:
        info = WorkerInfo(
            peer_id=worker.peer_id, models=tuple(message.models), capacity=message.capacity
        )
        await self._registry.add(info)
        logger.info(
            "worker %s registered: models=%s capacity=%d",
            worker.peer_id,
            info.models,
            info.capacity,
        )

    async def _load_report(self, worker: PeerConnection, message: LoadReport) -> None:
        updated = await self._registry.update_load(worker.peer_id, message.active, message.draining)
        if updated is None:
            await refuse(worker, "send register before load_report")

    async def _offer(self, edge: PeerConnection, offer: Offer) -> None:
        existing = self._offers.get(offer.session_id)
        if existing is not None and existing.edge_id != edge.peer_id:
            await refuse(edge, "session_id is already in use", offer.session_id)
            return
        pending = self._pending_offers(edge.peer_id)
        if offer.session_id not in pending and len(pending) >= self._max_pending:
            self._metrics.offers.labels(result="too_many_pending").inc()
            await edge.send(
                SignalError(
                    code=ErrorCode.OVERLOADED,
                    message=f"this edge already has {len(pending)} offers waiting for an "
                    f"answer (at most {self._max_pending}: --max-pending-offers-per-edge)",
                    session_id=offer.session_id,
                )
            )
            return
        worker = await self._worker_for(offer.model, offer.avoid)
        forwarded = Offer(
            session_id=offer.session_id, sdp=offer.sdp, model=offer.model, peer_id=edge.peer_id
        )
        if worker is not None:
            self._offers.open(offer.session_id, edge_id=edge.peer_id, worker_id=worker.peer_id)
            self._offers_of.setdefault(edge.peer_id, set()).add(offer.session_id)
            if await worker.send(forwarded):
                self._metrics.offers.labels(result="matched").inc()
                logger.debug(
                    "session %s: edge %s -> worker %s",
                    offer.session_id,
                    edge.peer_id,
                    worker.peer_id,
                )
                return
            self._offers.close(offer.session_id)
        await self._no_worker(edge, offer.model, offer.session_id)

    def _pending_offers(self, edge_id: str) -> set[str]:
        """The edge's offers still waiting for an answer (not answered, failed, expired)."""
        live = {
            session_id
            for session_id in self._offers_of.get(edge_id, ())
            if (pending := self._offers.get(session_id)) is not None and pending.edge_id == edge_id
        }
        if live:
            self._offers_of[edge_id] = live
        else:
            self._offers_of.pop(edge_id, None)
        return live

    async def _worker_for(self, model: str, avoid: tuple[str, ...] = ()) -> PeerConnection | None:
        """The connected worker to send a new session for ``model`` to, if any."""
        chosen = await self._choose(model, avoid)
        return await self._peer(Role.WORKER, chosen.peer_id) if chosen is not None else None

    async def _no_worker(self, edge: PeerConnection, model: str, session_id: str) -> None:
        self._metrics.offers.labels(result="no_worker").inc()
        await edge.send(
            SignalError(
                code=ErrorCode.NO_WORKER,
                message=f"no worker serves model {model or '(any)'}",
                session_id=session_id,
            )
        )

    async def _choose(self, model: str, avoid: tuple[str, ...]) -> WorkerInfo | None:
        return choose_worker(self._matchable(await self._registry.workers()), model, avoid)

    async def _answer(self, worker: PeerConnection, answer: Answer) -> None:
        pending = self._offers.get(answer.session_id)
        if pending is None or pending.worker_id != worker.peer_id:
            await refuse(
                worker, "no pending session with this id for this worker", answer.session_id
            )
            return
        self._offers.close(answer.session_id)
        edge = await self._peer(Role.EDGE, pending.edge_id)
        forwarded = answer.model_copy(update={"peer_id": worker.peer_id})
        if edge is None or not await edge.send(forwarded):
            logger.info(
                "session %s: edge %s left before the answer arrived",
                pending.session_id,
                pending.edge_id,
            )

    async def aclose(self) -> None:
        """Close every connection (1001 going away) so that shutdown does not wait on peers.

        Each connection's handler then detaches it as usual, so a shared registry is
        cleaned up too.
        """
        self._peers.cancel_closing()
        for relay in self._relays.all():
            for pipe in relay.pipes.values():
                await pipe.aclose()
        conns = self._peers.all()
        await asyncio.gather(
            *self._peers.closing,
            *(conn.close(CLOSE_GOING_AWAY, "server shutting down") for conn in conns),
            return_exceptions=True,
        )
