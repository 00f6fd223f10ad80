"""``PeerPool``: keeps a data channel to a worker open before anyone needs it.

A WebRTC handshake costs signaling round trips, ICE checks and DTLS; paying that on a
user's request would double its latency. The pool opens a link as soon as signaling is
up, re-opens it (jittered exponential backoff) when it drops, and hands the live peer
to requests. One warm peer today; the reliability work widens this to several.
"""

from __future__ import annotations

import asyncio
import logging
import random

from edge_agent.errors import EdgeError, NoPeerAvailable
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers.peer import Peer
from edge_agent.transport import connect_webrtc
from link import IcePolicy, SignalingClient

__all__ = ["PeerPool"]

log = logging.getLogger(__name__)


class PeerPool:
    """Owns the warm peer and the task that keeps it warm."""

    def __init__(
        self,
        signaling: SignalingClient,
        metrics: EdgeMetrics,
        *,
        model: str,
        connect_timeout_s: float,
        first_token_timeout_s: float,
        token_timeout_s: float,
        max_frame_bytes: int,
        policy: IcePolicy | None = None,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        self._signaling = signaling
        self._metrics = metrics
        self._model = model
        self._connect_timeout_s = connect_timeout_s
        self._first_token_timeout_s = first_token_timeout_s
        self._token_timeout_s = token_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._policy = policy or IcePolicy()
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._peer: Peer | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def peer(self) -> Peer | None:
        """The live peer, if any."""
        peer = self._peer
        return peer if peer is not None and not peer.closed else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._maintain(), name="peer-pool")

    async def acquire(self, timeout_s: float) -> Peer:
        """The live peer, waiting up to ``timeout_s`` for one; else ``NoPeerAvailable``."""
        peer = self.peer
        if peer is not None:
            return peer
        try:
            async with asyncio.timeout(timeout_s):
                while (peer := self.peer) is None:
                    await self._ready.wait()
                    if self.peer is None:  # it closed again before we woke
                        self._ready.clear()
        except TimeoutError as exc:
            raise NoPeerAvailable(f"no cloud worker reachable within {timeout_s:.0f} s") from exc
        return peer

    async def _maintain(self) -> None:
        delay = self._reconnect_min_s
        while True:
            try:
                link, answer = await connect_webrtc(
                    self._signaling,
                    model=self._model,
                    timeout_s=self._connect_timeout_s,
                    max_frame_bytes=self._max_frame_bytes,
                    policy=self._policy,
                )
            except EdgeError as exc:
                self._metrics.cloud_connects.labels("failed").inc()
                log.info("no cloud link yet: %s", exc)
            except Exception:  # a bug must not stop the pool for good: log it and retry
                self._metrics.cloud_connects.labels("failed").inc()
                log.exception("opening a cloud link failed unexpectedly")
            else:
                self._metrics.cloud_connects.labels("ok").inc()
                delay = self._reconnect_min_s
                peer = Peer(
                    link,
                    worker_id=answer.peer_id,
                    model=answer.model,
                    first_token_timeout_s=self._first_token_timeout_s,
                    token_timeout_s=self._token_timeout_s,
                )
                peer.start()
                self._peer = peer
                self._ready.set()
                gauge = self._metrics.cloud_channels.labels(peer.path.value)
                gauge.inc()
                try:
                    await peer.wait_closed()
                finally:
                    gauge.dec()
                    self._ready.clear()
                    self._peer = None
                    await peer.aclose()
                log.warning("link to worker %s closed; reconnecting", answer.peer_id)
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self._reconnect_max_s)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._peer is not None:
            await self._peer.aclose()
