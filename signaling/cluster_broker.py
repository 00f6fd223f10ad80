"""``ClusterBroker``: the broker of one instance among several sharing a ``Cluster``.

Same rules as ``Broker``, with peers possibly on other instances:

- A peer id is held by one live connection in the whole cluster. A newcomer whose id is
  held on another instance makes that instance ping its connection (``probe``): alive,
  the newcomer is refused (4009) as on one server; silent, it is closed there and the
  newcomer takes the id. A newcomer that presented a resume secret has its digest sent
  along: if it is the holder's, the holder is closed there at once (4010), no ping. An
  instance that died holds nothing once its presence expired.
- Matchmaking sees every worker of every instance (the shared registry). An offer or a
  relay request is kept on the *edge's* instance (so per-edge limits hold globally) and
  forwarded to the worker's instance, which remembers where the session came from
  (``RemoteSessions``) and sends the worker's answer, accept, frames and close back.
- A relayed session is paced where each member is read and bounded by
  ``--relay-buffer-bytes`` in front of each member's socket, on whichever instance.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from shared.close_codes import CloseCode
from shared.messages import (
    Answer,
    Message,
    Offer,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
)
from signaling.broker import Broker
from signaling.cluster import Cluster, RemotePeer
from signaling.registry.base import WorkerInfo
from signaling.relay_pipe import RelayPipe
from signaling.remote_sessions import RemoteSessions
from signaling.takeover import CLOSE_NORMAL, PeerConnection

__all__ = ["ClusterBroker"]

logger = logging.getLogger(__name__)


class ClusterBroker(Broker):
    """A ``Broker`` that reaches peers on other instances through ``cluster``."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        offer_timeout_s: float,
        relay_bytes_per_s: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self._remote = RemoteSessions(
            offer_timeout_s=offer_timeout_s, relay_bytes_per_s=relay_bytes_per_s
        )
        # Connections closed because their peer resumed elsewhere; weak: only a probe
        # under way when that happened asks (``cluster_probe``).
        self._resumed_away: weakref.WeakSet[PeerConnection] = weakref.WeakSet()

    # -- peers of this instance ------------------------------------------------------

    async def attach(self, conn: PeerConnection, resume: bytes | None = None) -> bool:
        key = (conn.role, conn.peer_id)
        if key not in self._peers:
            holder = await self.cluster.holder(*key)
            if holder is not None and holder != self.cluster.instance_id:
                if await self._held_elsewhere(holder, conn, resume):
                    return False
                logger.info(
                    "%s %s moved here from instance %s", conn.role.value, conn.peer_id, holder
                )
        if not await super().attach(conn, resume):
            return False
        await self.cluster.claim(*key)
        return True

    async def _held_elsewhere(
        self, holder: str, conn: PeerConnection, resume: bytes | None
    ) -> bool:
        """Whether ``holder``'s connection keeps the id against ``conn`` (also while a
        probe for another newcomer is under way: this one is refused). A resume digest
        goes ahead regardless: the holder's instance settles it without a ping."""
        key = (conn.role, conn.peer_id)
        timeout_s = self._peers.takeover_probe_s
        if resume is not None:
            return await self.cluster.probe(holder, *key, timeout_s, resume)
        held = await self._peers.probed(key, lambda: self.cluster.probe(holder, *key, timeout_s))
        return True if held is None else held

    async def _forget(self, conn: PeerConnection) -> None:
        await super()._forget(conn)
        await self.cluster.release(conn.role, conn.peer_id)
        if conn.role is not Role.WORKER:
            return
        origins: set[str] = set()
        for route in self._remote.of_worker(conn.peer_id):
            self._remote.close(route.session_id)
            if route.pipe is not None:
                route.pipe.abort()
            origins.add(route.origin)
        for origin in origins:
            await self.cluster.gone(origin, Role.WORKER, conn.peer_id)

    async def _peer(self, role: Role, peer_id: str) -> PeerConnection | None:
        conn = self._peers.get(role, peer_id)
        if conn is not None:
            return conn
        holder = await self.cluster.holder(role, peer_id)
        if holder is None or holder == self.cluster.instance_id:
            return None
        return RemotePeer(self.cluster, holder, role, peer_id)

    def _matchable(self, workers: list[WorkerInfo]) -> list[WorkerInfo]:
        return workers  # the shared registry lists only workers whose instance is alive

    def _paces(self, sender: PeerConnection) -> bool:
        return not isinstance(sender, RemotePeer)  # paced on its own instance already

    async def handle(self, conn: PeerConnection, message: Message) -> None:
        if not self.is_current(conn):
            return
        if conn.role is Role.WORKER and await self._route_out(conn, message):
            return
        await self._dispatch(conn, message)

    async def _route_out(self, worker: PeerConnection, message: Message) -> bool:
        """Send what a local worker says about a session homed elsewhere to its home."""
        if not isinstance(message, Answer | RelayAccept | RelayData | RelayClose):
            return False
        loop = asyncio.get_running_loop()
        route = self._remote.get(message.session_id, loop.time())
        if route is None or route.worker_id != worker.peer_id:
            return False
        if isinstance(message, RelayData) and route.bucket is not None:
            wait = route.bucket.delay(len(message.data), loop.time())
            if wait > 0:
                await asyncio.sleep(wait)  # slows this worker's own socket, nobody else's
        elif isinstance(message, Answer | RelayClose):
            ended = self._remote.close(message.session_id)
            if ended is not None and ended.pipe is not None:
                ended.pipe.abort()
        if await self.cluster.forward(route.origin, worker.role, worker.peer_id, message):
            return True
        logger.info("session %s: its edge's instance %s is gone", message.session_id, route.origin)
        if self._remote.close(message.session_id) is not None and route.relay:
            await worker.send(
                RelayClose(session_id=message.session_id, reason="edge's instance went away")
            )
        return True

    # -- what other instances send ---------------------------------------------------

    async def cluster_deliver(self, origin: str, role: Role, peer_id: str, msg: Message) -> None:
        conn = self._peers.get(role, peer_id)
        if conn is None:
            await self.cluster.gone(origin, role, peer_id)  # it left: let origin clean up
            return
        now = asyncio.get_running_loop().time()
        if role is Role.WORKER and isinstance(msg, Offer | RelayOpen):
            relay = isinstance(msg, RelayOpen)
            self._remote.open(
                msg.session_id, origin=origin, worker_id=peer_id, relay=relay, now=now
            )
        elif role is Role.WORKER and isinstance(msg, RelayData | RelayClose):
            await self._deliver_relayed(origin, conn, msg, now)
            return
        await conn.send(msg)

    async def _deliver_relayed(
        self, origin: str, worker: PeerConnection, msg: RelayData | RelayClose, now: float
    ) -> None:
        route = self._remote.get(msg.session_id, now)
        if route is None or route.worker_id != worker.peer_id or not route.relay:
            if isinstance(msg, RelayData):
                close = RelayClose(session_id=msg.session_id, reason="no such relayed session")
                await self.cluster.forward(origin, worker.role, worker.peer_id, close)
            return
        if route.pipe is None:
            route.pipe = RelayPipe(
                worker.send,
                limit_bytes=self._relays.buffer_bytes,
                name=f"relay-worker-{worker.peer_id}",
            )
        if isinstance(msg, RelayClose):
            self._remote.close(msg.session_id)
            route.pipe.finish(msg)
            return
        if route.pipe.put(msg):
            return
        self._metrics.relay_overflows.inc()
        logger.info(
            "relayed session %s dropped: worker %s read too slowly", msg.session_id, peer_of(worker)
        )
        close = RelayClose(
            session_id=msg.session_id, reason="relay buffer full: the worker reads too slowly"
        )
        self._remote.close(msg.session_id)
        route.pipe.abort(close)
        await self.cluster.forward(origin, worker.role, worker.peer_id, close)

    async def cluster_handle(self, origin: str, role: Role, peer_id: str, msg: Message) -> None:
        await self._dispatch(RemotePeer(self.cluster, origin, role, peer_id), msg)

    async def cluster_gone(self, origin: str, role: Role, peer_id: str) -> None:
        if (role, peer_id) in self._peers:
            return  # it has reconnected here since: nothing of its is stale
        await self._end_sessions_of(role, peer_id)

    async def cluster_probe(self, role: Role, peer_id: str, resume: bytes | None = None) -> bool:
        conn = self._peers.get(role, peer_id)
        if conn is None:
            return False
        if conn.resumed_by(resume):
            logger.info(
                "%s %s resumed on another instance: closing its connection here at once",
                role.value,
                peer_id,
            )
            self._resumed_away.add(conn)
            await self._peers.replace(conn, CloseCode.RESUMED, "resumed on a newer connection")
            return False
        if await conn.alive(self._peers.takeover_probe_s):
            return True
        if self.is_current(conn):
            logger.info(
                "%s %s reconnected to another instance; its connection here is silent: closing it",
                role.value,
                peer_id,
            )
            await self._peers.replace(conn, CLOSE_NORMAL, "replaced by a newer connection")
            return False
        # Replaced while the ping was out: if by its own process resuming (here or
        # elsewhere), the id is held again and this newcomer must not take it.
        return conn in self._resumed_away or self._peers.get(role, peer_id) is not None

    async def cluster_sweep(self) -> None:
        """End the relayed sessions and pending offers whose worker's instance died
        without a word (its presence expired): their edges hear it now, not at a timeout."""
        self._remote.prune(asyncio.get_running_loop().time())
        waited_on = {r.worker_id for r in self._relays.all()} | self._offers.workers()
        for worker_id in waited_on:
            if (Role.WORKER, worker_id) in self._peers:
                continue
            if await self.cluster.holder(Role.WORKER, worker_id) is None:
                await self._end_sessions_of(Role.WORKER, worker_id)

    async def aclose(self) -> None:
        await super().aclose()
        for route in self._remote.of_all():
            if route.pipe is not None:
                await route.pipe.aclose()


def peer_of(conn: PeerConnection) -> str:
    return f"{conn.role.value} {conn.peer_id}"
