"""The worker's answering side: offers from signaling become links, links become sessions.

Offers arrive only through signaling, which brokered them for this worker; an edge
cannot reach us any other way. Each offer is answered in a task of its own so that a
slow ICE gathering never stalls the signaling connection, and every task and session
is owned here and cancelled by ``aclose``. Each edge gets its share of the worker
(``shares.py``): offers past its ``--max-links-per-edge`` are not answered, and its
streams, across its links, are limited together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cloud_worker.backends import Backend
from cloud_worker.edge_session import EdgeSession
from cloud_worker.metrics import WorkerMetrics
from cloud_worker.settings import WorkerSettings
from cloud_worker.shares import EdgeShares, streams_per_edge
from link import IcePolicy, Link, RelayLink, accept_offer
from shared.messages import Answer, IceServer, LoadReport, Message, Offer, RelayOpen

__all__ = ["LinkAcceptor"]

log = logging.getLogger(__name__)


class LinkAcceptor:
    """Answers offers, runs an ``EdgeSession`` per edge, reports load to signaling."""

    def __init__(
        self,
        settings: WorkerSettings,
        backend: Backend,
        metrics: WorkerMetrics,
        *,
        send: Callable[[Message], Awaitable[None]],
        ice_servers: Callable[[], tuple[IceServer, ...]],
        accept_relay: Callable[[RelayOpen, str], Awaitable[RelayLink]],
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._metrics = metrics
        self._send = send
        self._ice_servers = ice_servers
        self._accept_relay_link = accept_relay
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: set[EdgeSession] = set()
        self._load_changed = asyncio.Event()
        self._draining = False
        self._shares = EdgeShares(
            max_streams=streams_per_edge(
                capacity=backend.capacity,
                max_queue=settings.max_queue,
                share=settings.edge_share,
                explicit=settings.max_streams_per_peer,
            ),
            max_links=settings.max_links_per_edge,
        )

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def start(self) -> None:
        self._spawn(self._report_load(), "load-reporter")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, message: Message) -> None:
        """Signaling's ``on_message``: offers (WebRTC) and relay requests."""
        if self._draining:  # signaling may still have routed one our way before it heard
            log.info("draining: ignoring %s", message.type_tag)
        elif isinstance(message, Offer | RelayOpen):
            self._spawn(self._within_share(message), f"{message.type_tag}-{message.session_id}")
        else:
            log.debug("ignoring %s from signaling", message.type_tag)

    async def _within_share(self, message: Offer | RelayOpen) -> None:
        """Answer an offer or a relay request if its edge has a link to spare here; the
        slot is the edge's until that session ends."""
        if not self._shares.take_link(message.peer_id):
            self._metrics.offers_total.labels("refused").inc()
            log.warning(
                "edge %s already holds %d links here (--max-links-per-edge); not answering",
                message.peer_id,
                self._shares.max_links,
            )
            return
        try:
            if isinstance(message, Offer):
                await self._answer(message)
            else:
                await self._accept_relay(message)
        finally:
            self._shares.release_link(message.peer_id)

    async def _accept_relay(self, request: RelayOpen) -> None:
        """Key the session end to end and accept it (``accept_relay`` refuses an edge
        that sent no key), then serve it like any link."""
        try:
            link = await self._accept_relay_link(request, self._backend.models[0])
        except Exception as exc:
            log.warning("could not accept the relay from edge %s: %s", request.peer_id, exc)
            return
        link.rename(f"{request.peer_id}/relay")
        self._metrics.offers_total.labels("relay").inc()
        await self._serve(link, request.peer_id)

    async def _answer(self, offer: Offer) -> None:
        label = f"{offer.peer_id}/{offer.session_id[:8]}"
        try:
            answer = await accept_offer(
                offer.sdp,
                self._ice_servers(),
                max_frame_bytes=self._settings.max_frame_bytes,
                max_queued_frames=self._settings.max_queued_frames,
                policy=IcePolicy.from_settings(self._settings),
                label=label,
            )
        except Exception as exc:
            self._metrics.offers_total.labels("bad_offer").inc()
            log.warning(
                "could not answer offer from edge %s: %s", offer.peer_id, exc.__class__.__name__
            )
            return
        try:
            model = self._backend.models[0]
            await self._send(Answer(session_id=offer.session_id, sdp=answer.sdp, model=model))
            link = await answer.wait_link(self._settings.connect_timeout_s)
        except Exception:
            self._metrics.offers_total.labels("no_channel").inc()
            log.warning("edge %s never opened its data channel", offer.peer_id)
            await answer.pc.close()
            return
        self._metrics.offers_total.labels("connected").inc()
        await self._serve(link, offer.peer_id)

    async def _serve(self, link: Link, peer_id: str) -> None:
        path = link.path.value
        session = EdgeSession(
            link,
            self._backend,
            peer_id=peer_id,
            max_streams=self._shares.max_streams,
            shares=self._shares,
            peer_timeout_s=self._settings.peer_timeout_s,
            on_load_change=self._load_changed.set,
            on_result=lambda result: self._metrics.streams.labels(result).inc(),
        )
        self._sessions.add(session)
        self._metrics.sessions.labels(path).inc()
        self._metrics.sessions_total.labels(path).inc()
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._metrics.sessions.labels(path).dec()
            log.info("session with edge %s closed", peer_id)

    async def _report_load(self) -> None:
        while True:
            await self._load_changed.wait()
            self._load_changed.clear()
            try:
                await self._send(LoadReport(active=self._backend.active, draining=self._draining))
            except Exception:  # signaling down: the next change (or reconnect) reports again
                log.debug("could not report load to signaling")

    async def drain(self, grace_s: float) -> None:
        """Stop taking work: tell signaling (no new matches), tell each edge, finish what
        fits in ``grace_s``, hand the rest back as retryable."""
        self._draining = True
        try:
            await self._send(LoadReport(active=self._backend.active, draining=True))
        except Exception:  # signaling down: edges still hear Drain on their links
            log.warning("could not tell signaling this worker is draining")
        sessions = list(self._sessions)
        log.info("draining %d session(s) within %.0f s", len(sessions), grace_s)
        await asyncio.gather(*(s.drain(grace_s) for s in sessions), return_exceptions=True)

    @property
    def draining(self) -> bool:
        return self._draining

    def engine_health(self, healthy: bool) -> None:
        """The backend's health listener: pause while it is down, resume when it is back."""
        self._spawn(self.resume() if healthy else self.pause(), "engine-health")

    async def pause(self) -> None:
        """The engine went down: take no work until ``resume``. Like a drain with no
        grace (streams handed back now, edges told to go elsewhere), and then the
        sessions close, so that each edge links to another worker, or back here later."""
        if self._draining:
            return
        await self.drain(0)
        sessions = list(self._sessions)
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)

    async def resume(self) -> None:
        """The engine answers again: signaling may match edges here once more."""
        if not self._draining:
            return
        self._draining = False
        log.info("taking work again")
        try:
            await self._send(LoadReport(active=self._backend.active, draining=False))
        except Exception:  # signaling down: the hello on reconnect says it
            log.warning("could not tell signaling this worker takes work again")

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.aclose() for s in list(self._sessions)), return_exceptions=True)
