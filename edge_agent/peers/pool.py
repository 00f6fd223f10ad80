"""``PeerPool``: keeps a link to a worker open before anyone needs it, on the best path.

A WebRTC handshake costs signaling round trips, ICE checks and DTLS; paying that on a
user's request would double its latency. The pool opens a link as soon as signaling is
up, re-opens it (jittered exponential backoff) when it drops, and hands the live peer
to requests. When only the relay through signaling worked, it keeps trying WebRTC in
the background, and on a TURN-relayed link a direct one, and moves new requests to the
better path as soon as it opens; streams already on the old link finish there, then it
closes (Tailscale's DERP upgrade, without dropping a stream); a draining worker is left
the same way. One warm
peer at a time; several, spread over workers, would shorten failover further.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from edge_agent.errors import EdgeError, NoPeerAvailable
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers.peer import Peer, PeerState
from edge_agent.transport import Connected, connect_webrtc, connect_worker
from link import DEFAULT_QUEUED_FRAMES, IcePolicy, PathKind, SignalingClient

__all__ = ["PeerPool", "PoolConfig", "Upgrade"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolConfig:
    """Deadlines and intervals of the pool, all from edge settings."""

    model: str = ""
    connect_timeout_s: float = 15.0
    ice_deadline_s: float = 8.0
    first_token_timeout_s: float = 60.0
    token_timeout_s: float = 30.0
    max_frame_bytes: int = 16_384
    max_queued_frames: int = DEFAULT_QUEUED_FRAMES
    heartbeat_s: float = 2.0
    dead_after_s: float = 6.0
    policy: IcePolicy = field(default_factory=IcePolicy)
    force_relay: bool = False
    upgrade_interval_s: float = 30.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_queued_chunks: int = 64
    """Token chunks one cloud stream may hold for a slow reader (then they merge)."""


class Upgrade(StrEnum):
    """The better path a link may be lifted to."""

    WEBRTC = "webrtc"
    """Any WebRTC path (direct or TURN), from the relay through signaling."""
    DIRECT = "direct"
    """A direct path, from a TURN-relayed one."""


class PeerPool:
    """Owns the warm peer and the tasks that keep it warm."""

    def __init__(
        self, signaling: SignalingClient, metrics: EdgeMetrics, config: PoolConfig
    ) -> None:
        self._signaling = signaling
        self._metrics = metrics
        self._config = config
        self._peer: Peer | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def peer(self) -> Peer | None:
        """The live peer new requests may use, if any (not closed, not draining)."""
        peer = self._peer
        return peer if peer is not None and not peer.closed and not peer.draining else None

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

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _adopt(self, connected: Connected) -> Peer:
        """Make a fresh link the peer new requests go to."""
        cfg = self._config
        peer = Peer(
            connected.link,
            worker_id=connected.worker_id,
            model=connected.model,
            first_token_timeout_s=cfg.first_token_timeout_s,
            token_timeout_s=cfg.token_timeout_s,
            heartbeat_s=cfg.heartbeat_s,
            dead_after_s=cfg.dead_after_s,
            max_queued_chunks=cfg.max_queued_chunks,
        )
        peer.start()
        self._metrics.cloud_connects.labels(connected.link.path.value).inc()
        self._spawn(self._watch(peer), f"watch-{peer.worker_id}")
        self._peer = peer
        self._ready.set()
        return peer

    async def _watch(self, peer: Peer) -> None:
        gauge = self._metrics.cloud_channels.labels(peer.path.value)
        gauge.inc()
        try:
            await peer.wait_closed()
        finally:
            gauge.dec()
            if self._peer is peer:
                self._peer = None
                self._ready.clear()
            await peer.aclose()

    async def _retire(self, peer: Peer) -> None:
        """Close ``peer`` once the streams still on it have finished."""
        await peer.wait_idle()
        log.info("link to worker %s retired: its last stream finished", peer.worker_id)
        await peer.aclose()

    async def _maintain(self) -> None:
        cfg = self._config
        delay = cfg.reconnect_min_s
        while True:
            try:
                connected = await self._connect()
            except EdgeError as exc:
                self._metrics.cloud_connects.labels("failed").inc()
                log.info("no cloud link yet: %s", exc)
            except Exception:  # a bug must not stop the pool for good: log it and retry
                self._metrics.cloud_connects.labels("failed").inc()
                log.exception("opening a cloud link failed unexpectedly")
            else:
                delay = cfg.reconnect_min_s
                await self._hold(self._adopt(connected))
                log.warning("cloud link closed; reconnecting")
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, cfg.reconnect_max_s)

    async def _hold(self, peer: Peer) -> None:
        """Until the current link closes. Meanwhile: leave a draining worker for another
        one, and lift a worse link to a better one when that becomes possible: a relay
        through signaling to any WebRTC path, a TURN-relayed one to a direct one. A
        failed attempt doubles the wait before the next (up to 16 intervals), so an edge
        behind a NAT that never allows better does not keep a worker busy with offers."""
        cfg = self._config
        wait_s = cfg.upgrade_interval_s
        while True:
            better = _better_path_to_try(peer.path, cfg.force_relay)
            state = await peer.wait_left_open(wait_s if better is not None else None)
            if state is PeerState.CLOSED:
                return
            if state is PeerState.DRAINING:
                self._ready.clear()
                try:
                    connected = await self._connect()
                except EdgeError as exc:
                    log.warning(
                        "worker %s drains and no other is reachable: %s", peer.worker_id, exc
                    )
                    await peer.wait_closed()
                    return
            else:  # still open after the interval: time to try a better path
                try:
                    connected = await connect_webrtc(
                        self._signaling,
                        model=cfg.model,
                        timeout_s=cfg.ice_deadline_s,
                        max_frame_bytes=cfg.max_frame_bytes,
                        max_queued_frames=cfg.max_queued_frames,
                        policy=replace(cfg.policy, direct_only=better is Upgrade.DIRECT),
                    )
                except EdgeError as exc:
                    log.debug("no %s path yet: %s", better, exc)
                    wait_s = min(wait_s * 2, cfg.upgrade_interval_s * 16)
                    continue
                log.info("upgraded from %s to %s", peer.path.value, connected.link.path.value)
                wait_s = cfg.upgrade_interval_s
            old, peer = peer, self._adopt(connected)
            self._spawn(self._retire(old), f"retire-{old.worker_id}")

    async def _connect(self) -> Connected:
        cfg = self._config
        return await connect_worker(
            self._signaling,
            model=cfg.model,
            policy=cfg.policy,
            ice_deadline_s=cfg.ice_deadline_s,
            connect_timeout_s=cfg.connect_timeout_s,
            max_frame_bytes=cfg.max_frame_bytes,
            max_queued_frames=cfg.max_queued_frames,
            force_relay=cfg.force_relay,
        )

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._peer is not None:
            await self._peer.aclose()


def _better_path_to_try(path: PathKind, force_relay: bool) -> Upgrade | None:
    """What a link on ``path`` may be lifted to: any WebRTC path from the relay, a direct
    one from TURN; nothing from direct, from a path that could not be told (trying would
    replace it with another such link every interval), or when the relay is forced."""
    if force_relay:
        return None
    if path is PathKind.RELAY:
        return Upgrade.WEBRTC
    if path in (PathKind.TURN_UDP, PathKind.TURN_TCP):
        return Upgrade.DIRECT
    return None
