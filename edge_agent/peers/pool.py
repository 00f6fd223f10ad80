"""``PeerPool``: keeps a link to a worker open before anyone needs it, on the best path.

A WebRTC handshake costs signaling round trips, ICE checks and DTLS (seconds; over TURN
on TCP, or when only the relay will do, many); a user should never wait for it. So, with
``relay_first`` (the default), the pool's first link is the end-to-end encrypted relay
through signaling, which opens in one round trip wherever signaling is reachable, and
WebRTC is negotiated beside it, with no user-facing deadline (``upgrade_timeout_s``, time
enough for TURN over TCP), retried with bounded backoff. On a TURN-relayed link it keeps
trying a direct one. New requests move to the better path as soon as it opens; streams
already on the old link finish there, then it closes (Tailscale's DERP upgrade, without
dropping or repeating a stream); a draining worker is left the same way. Without
``relay_first`` WebRTC is tried first, for ``ice_deadline_s``, and the relay only after.
The pool re-opens a link (jittered exponential backoff) whenever it drops: after a
network change too, when the old path dies with the old address.

With ``warm_standby``, the pool also keeps a second link open, to another worker serving
the same model (signaling is asked to avoid the primary's). When the primary closes or
its worker drains, the standby takes over at once: a failover then costs no handshake,
and a new standby is sought beside the new primary. With a single worker there is none;
the pool asks again with backoff, as workers come and go.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import Any

from edge_agent.errors import EdgeError, NoPeerAvailable, PathFailed
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers.config import PoolConfig
from edge_agent.peers.netwatch import AddressWatch
from edge_agent.peers.peer import Peer, PeerState
from edge_agent.peers.upgrade import (
    Upgrade,
    backoff,
    better_path_to_try,
    is_upgrade,
    try_upgrade,
)
from edge_agent.transport import Connected, connect_relay, connect_worker
from link import SignalingClient

__all__ = ["PeerPool", "PoolConfig", "Upgrade"]

log = logging.getLogger(__name__)


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
        self._standby: Peer | None = None
        self._standby_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._network_changed = asyncio.Event()
        self._linked: set[Peer] = set()  # every peer not yet closed: primary, standby, retiring

    @property
    def peer(self) -> Peer | None:
        """The live peer new requests may use, if any (not closed, not draining)."""
        peer = self._peer
        return peer if peer is not None and not peer.closed and not peer.draining else None

    @property
    def standby(self) -> Peer | None:
        """The warm second link, if one is open (never the primary's worker)."""
        standby = self._standby
        return standby if standby is not None and standby.state is PeerState.OPEN else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._maintain(), name="peer-pool")
            if self._config.warm_standby:
                self._spawn(self._keep_standby(), "peer-pool-standby")
            if self._config.address_poll_s > 0:
                watch = AddressWatch(
                    self._config.address_poll_s,
                    self._on_addresses_lost,
                    on_gained=self._signaling.retry_now,
                )
                self._spawn(watch.run(), "peer-pool-addresses")

    async def _on_addresses_lost(self, lost: frozenset[str]) -> None:
        """The network changed under the links: a new signaling connection, then a new
        link for new requests. Meanwhile each link still open is checked (``Peer.recheck``:
        closed at once if it left from a lost address, else if its worker stays silent for
        ``network_change_check_s``), so that its streams fail over now rather than after
        ``dead_after_s``. (A relayed link ended with the old signaling connection.)"""
        await self._signaling.reconnect()
        self._network_changed.set()
        for peer in list(self._linked):
            self._spawn(self._recheck(peer, lost), f"recheck-{peer.worker_id}")

    async def _recheck(self, peer: Peer, lost: frozenset[str]) -> None:
        await peer.recheck(self._config.network_change_check_s, lost)

    async def acquire(self, timeout_s: float) -> Peer:
        """The live peer, waiting up to ``timeout_s`` for one; else ``NoPeerAvailable``."""
        peer = self.peer
        if peer is not None:
            return peer
        try:
            async with asyncio.timeout(timeout_s):
                return await self._wait_primary()
        except TimeoutError as exc:
            raise NoPeerAvailable(f"no cloud worker reachable within {timeout_s:.0f} s") from exc

    async def _wait_primary(self) -> Peer:
        while (peer := self.peer) is None:
            await self._ready.wait()
            if self.peer is None:  # it closed again before we woke
                self._ready.clear()
        return peer

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _adopt(self, connected: Connected, *, standby: bool = False) -> Peer:
        """Make a fresh link the peer new requests go to (or the warm standby)."""
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
            bounds=cfg.bounds,
        )
        peer.start()
        self._linked.add(peer)
        self._metrics.cloud_connects.labels(connected.link.path.value).inc()
        self._spawn(self._watch(peer), f"watch-{peer.worker_id}")
        if standby:
            self._standby = peer
            self._metrics.cloud_standby.set(1)
        else:
            self._peer = peer
            self._ready.set()
            self._standby_changed.set()  # the standby must be another worker than this
        return peer

    def _promote(self) -> Peer | None:
        """The standby becomes the primary, if it is open: no handshake needed."""
        standby = self.standby
        if standby is None:
            return None
        self._standby = None
        self._metrics.cloud_standby.set(0)
        self._standby_changed.set()
        self._peer = standby
        self._ready.set()
        log.info("worker %s, the warm standby, takes over", standby.worker_id)
        return standby

    async def _watch(self, peer: Peer) -> None:
        gauge = self._metrics.cloud_channels.labels(peer.path.value)
        gauge.inc()
        try:
            await peer.wait_closed()
        finally:
            self._linked.discard(peer)
            gauge.dec()
            if self._peer is peer:
                self._peer = None
                self._ready.clear()
            if self._standby is peer:
                self._standby = None
                self._metrics.cloud_standby.set(0)
                self._standby_changed.set()
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
            promoted = self._promote()
            if promoted is not None:
                await self._hold(promoted)
                log.warning("cloud link closed; reconnecting")
                continue
            # The link opened now starts from the network as it is: a change seen before
            # this point needs no second new link (it would only replace this one).
            self._network_changed.clear()
            try:
                connected = await self._connect_primary()
            except EdgeError as exc:
                self._metrics.cloud_connects.labels("failed").inc()
                log.info("no cloud link yet: %s", exc)
            except Exception:  # a bug must not stop the pool for good: log it and retry
                self._metrics.cloud_connects.labels("failed").inc()
                log.exception("opening a cloud link failed unexpectedly")
            else:
                delay = cfg.reconnect_min_s
                await self._hold(self._adopt(connected), upgrade_now=self._relay_first)
                log.warning("cloud link closed; reconnecting")
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, cfg.reconnect_max_s)

    @property
    def _relay_first(self) -> bool:
        return self._config.relay_first and not self._config.force_relay

    async def _connect_primary(self) -> Connected:
        """The link requests will wait for: the relay at once with ``relay_first`` (it
        opens wherever signaling is reachable), else WebRTC within ``ice_deadline_s``,
        then the relay. When the relay is refused or not accepted in time (a signaling
        server or a worker without it), WebRTC first."""
        cfg = self._config
        if self._relay_first:
            try:
                return await connect_relay(
                    self._signaling,
                    model=cfg.model,
                    timeout_s=cfg.connect_timeout_s,
                    max_frame_bytes=cfg.max_frame_bytes,
                    max_queued_frames=cfg.max_queued_frames,
                )
            except PathFailed as exc:
                log.info("no relay through signaling (%s); trying WebRTC first", exc)
        return await self._connect()

    async def _hold(self, peer: Peer, *, upgrade_now: bool = False) -> None:
        """Until the current link closes. Meanwhile: leave a draining worker for another
        one, and lift a worse link to a better one when that becomes possible: a relay
        through signaling to any WebRTC path, a TURN-relayed one to a direct one
        (``upgrade_now``: the first attempt at once, as after a relay-first link). A
        failed attempt doubles the wait before the next (up to 16 intervals), so an edge
        behind a NAT that never allows better does not keep a worker busy with offers."""
        cfg = self._config
        wait_s = 0.0 if upgrade_now else cfg.upgrade_interval_s
        while True:
            better = better_path_to_try(peer.path, cfg.force_relay)
            state = await self._wait_on(peer, wait_s if better is not None else None)
            if state is None:  # the network changed: the link is likely dead already
                self._network_changed.clear()
                try:
                    connected = await self._connect_primary()
                except EdgeError as exc:
                    log.warning("no new link after the network change yet: %s", exc)
                    wait_s = cfg.reconnect_min_s
                    continue
                log.info("new %s link after the network change", connected.link.path.value)
                wait_s = 0.0 if self._relay_first else cfg.upgrade_interval_s
            elif state is PeerState.CLOSED:
                return
            if state is PeerState.DRAINING:
                self._ready.clear()
                promoted = self._promote()
                if promoted is not None:
                    old, peer = peer, promoted
                    self._spawn(self._retire(old), f"retire-{old.worker_id}")
                    continue
                try:
                    connected = await self._connect()
                except EdgeError as exc:
                    log.warning(
                        "worker %s drains and no other is reachable: %s", peer.worker_id, exc
                    )
                    await peer.wait_closed()
                    return
            elif state is PeerState.OPEN:  # still open after the interval: try a better path
                standby = self.standby
                if standby is not None and is_upgrade(better, standby.path):
                    log.info(
                        "the standby's %s link beats the primary's %s: swapping",
                        standby.path.value,
                        peer.path.value,
                    )
                    promoted = self._promote()
                    assert promoted is not None
                    old, peer = peer, promoted
                    self._spawn(self._retire(old), f"retire-{old.worker_id}")
                    wait_s = cfg.upgrade_interval_s
                    continue
                assert better is not None
                upgraded = await try_upgrade(self._signaling, cfg, peer, better)
                if upgraded is None:
                    wait_s = backoff(wait_s, cfg.upgrade_interval_s)
                    continue
                connected = upgraded
                log.info("upgraded from %s to %s", peer.path.value, connected.link.path.value)
                wait_s = cfg.upgrade_interval_s
            old, peer = peer, self._adopt(connected)
            self._spawn(self._retire(old), f"retire-{old.worker_id}")

    async def _wait_on(self, peer: Peer, timeout_s: float | None) -> PeerState | None:
        """Until ``peer`` leaves ``OPEN`` or ``timeout_s`` passes (its state then), or
        the network changes (``None``; the caller clears the event once it acts)."""
        changed = asyncio.ensure_future(self._network_changed.wait())
        left = asyncio.ensure_future(peer.wait_left_open(timeout_s))
        try:
            await asyncio.wait({changed, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            left.cancel()
            await asyncio.gather(changed, left, return_exceptions=True)
        if peer.state is not PeerState.OPEN or not self._network_changed.is_set():
            return peer.state
        return None

    async def _keep_standby(self) -> None:
        """Keep a second link open, to another worker than the primary's."""
        cfg = self._config
        delay = cfg.reconnect_min_s
        while True:
            self._standby_changed.clear()
            standby, primary = self.standby, self.peer
            if standby is not None:
                if primary is not None and primary.worker_id == standby.worker_id:
                    # The primary moved to the standby's worker (a path upgrade picks any).
                    self._standby = None
                    self._metrics.cloud_standby.set(0)
                    await standby.aclose()
                    continue
                await self._standby_changed.wait()
                continue
            primary = await self._wait_primary()
            try:
                connected = await self._connect(avoid=(primary.worker_id,))
            except EdgeError as exc:
                log.debug("no second worker for a warm standby yet: %s", exc)
            else:
                if connected.worker_id != primary.worker_id:
                    delay = cfg.reconnect_min_s
                    log.info("warm standby linked to worker %s", connected.worker_id)
                    self._adopt(connected, standby=True)
                    continue
                # A signaling server that predates ``avoid`` sent us the same worker.
                await connected.link.aclose()
                delay = cfg.reconnect_max_s
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, cfg.reconnect_max_s)

    async def _connect(self, *, avoid: tuple[str, ...] = ()) -> Connected:
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
            avoid=avoid,
        )

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in (self._peer, self._standby):
            if peer is not None:
                await peer.aclose()
