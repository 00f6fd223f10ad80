"""``RemoteEngine``: one attempt at generating on a cloud worker, through the pool's
warm peer. It never retries and never waits for a link: ``FailoverEngine`` owns both."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from edge_agent.engines.base import Engine, EngineEvent, LinkedWorker
from edge_agent.errors import NoPeerAvailable
from edge_agent.peers import PeerPool
from edge_agent.router import Route
from shared.messages import GenerateRequest

__all__ = ["RemoteEngine"]


class RemoteEngine(Engine):
    """Serves requests on whichever worker the pool holds a link to."""

    served_by = Route.CLOUD

    def __init__(self, pool: PeerPool, *, model: str) -> None:
        self._pool = pool
        self._model = model or "cloud"

    @property
    def ready(self) -> bool:
        return self._pool.peer is not None

    @property
    def model(self) -> str:
        """The live worker's model name, else the configured one."""
        peer = self._pool.peer
        return peer.model if peer is not None and peer.model else self._model

    @property
    def path(self) -> str | None:
        """The network path of the live link (``direct``, ``turn-udp``, ...), if any."""
        peer = self._pool.peer
        return peer.path.value if peer is not None else None

    def links(self) -> tuple[LinkedWorker, ...]:
        """The primary and warm-standby links of the pool."""
        found = []
        for peer, role in ((self._pool.peer, "primary"), (self._pool.standby, "standby")):
            if peer is not None:
                found.append(LinkedWorker(peer.worker_id, peer.path.value, role))
        return tuple(found)

    async def available(self, timeout_s: float) -> bool:
        """Whether a worker link is (or becomes, within ``timeout_s``) usable."""
        try:
            await self._pool.acquire(timeout_s)
        except NoPeerAvailable:
            return False
        return True

    def start(self) -> None:
        """Start keeping a warm link to a worker."""
        self._pool.start()

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        peer = self._pool.peer
        if peer is None:
            raise NoPeerAvailable("no cloud worker is linked")
        if self._model != "cloud" and not request.model:
            request = request.model_copy(update={"model": self._model})
        async with aclosing(peer.stream(request)) as events:
            async for event in events:
                yield event

    async def aclose(self) -> None:
        """Close the pool and its links; the app calls it once, at shutdown."""
        await self._pool.aclose()
