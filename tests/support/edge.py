"""An edge's peer pool beside a real signaling app, real worker apps to join it, and the
edge's real local engine, all in this event loop on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from cloud_worker.app import create_app as create_worker
from cloud_worker.settings import WorkerSettings
from edge_agent.engines.local import LocalEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig
from inference import LlamaRunner, RunnerConfig
from link import IcePolicy, SignalingClient
from shared.messages import Role
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.model import model_path
from tests.support.wait import eventually

# WebRTC first (no relay-first) unless a test asks: most tests here are about one path.
LOOPBACK_POOL = PoolConfig(
    policy=IcePolicy(host_addresses=("127.0.0.1",)), reconnect_min_s=0.1, relay_first=False
)


@dataclass
class EdgeSide:
    url: str
    pool: PeerPool
    metrics: EdgeMetrics


@asynccontextmanager
async def edge_pool(config: PoolConfig = LOOPBACK_POOL) -> AsyncIterator[EdgeSide]:
    """Signaling on loopback, and an edge pool connected to it (no worker yet)."""
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        signaling = SignalingClient(url, token(Role.EDGE, "edge-1"), reconnect_max_s=1)
        metrics = EdgeMetrics()
        pool = PeerPool(signaling, metrics, replace(config))
        signaling.start()
        pool.start()
        try:
            yield EdgeSide(url, pool, metrics)
        finally:
            await pool.aclose()
            await signaling.aclose()


def worker_app(
    signaling_url: str,
    peer_id: str,
    ice_host_addresses: str = "127.0.0.1",
    drain_grace_s: float = 1.0,
    n_ctx: int = 512,
    **more: Any,
) -> web.Application:
    """A real worker (real model) that registers with ``signaling_url``."""
    settings = WorkerSettings(
        signaling=signaling_url,
        token=SecretStr(token(Role.WORKER, peer_id)),
        ice_host_addresses=ice_host_addresses,
        drain_grace_s=drain_grace_s,
        n_ctx=n_ctx,
        port=0,
        **more,
    )
    return create_worker(settings)


@asynccontextmanager
async def linked_worker(
    pool: PeerPool, signaling_url: str, peer_id: str, **settings: Any
) -> AsyncIterator[int]:
    """A real worker (``worker_app`` with ``settings``) serving on loopback, entered once
    ``pool``'s live peer is it, as its HTTP port; on exit it stops (drains as
    ``settings`` say)."""
    async with serving(worker_app(signaling_url, peer_id, **settings)) as port:
        await wait_for_worker(pool, peer_id)
        yield port


@asynccontextmanager
async def local_engine(*, n_ctx: int) -> AsyncIterator[LocalEngine]:
    """The bundled model loaded into a real local engine (the edge's own), closed after."""
    local = LocalEngine(LlamaRunner(RunnerConfig(model_path=model_path(), n_ctx=n_ctx)))
    await local.load()
    try:
        yield local
    finally:
        await local.aclose()


async def wait_for_worker(pool: PeerPool, worker_id: str, timeout_s: float = 30) -> None:
    """Until the pool's live peer is ``worker_id``."""
    await eventually(
        lambda: (peer := pool.peer) is not None and peer.worker_id == worker_id,
        timeout_s=timeout_s,
        what=f"the pool linked to {worker_id}",
    )


async def wait_for_workers(signaling_url: str, n: int, timeout_s: float = 30) -> None:
    """Until signaling has ``n`` workers registered."""
    health = signaling_url.replace("ws://", "http://").replace("/v1/signal", "/healthz")
    async with aiohttp.ClientSession() as http:

        async def registered() -> bool:
            async with http.get(health) as resp:
                return bool((await resp.json())["workers"] >= n)

        await eventually(registered, timeout_s=timeout_s, what=f"{n} workers registered")
