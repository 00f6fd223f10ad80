"""``PeerPool``: a warm link as soon as a worker exists, and a new one when it goes away.

Real signaling and worker apps (in this loop), real WebRTC on loopback, the real model.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from pydantic import SecretStr

from cloud_worker.app import create_app as create_worker
from cloud_worker.settings import WorkerSettings
from edge_agent.errors import NoPeerAvailable
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig
from link import IcePolicy, SignalingClient
from shared.messages import (
    ChatMessage,
    GenerateRequest,
    Role,
    SamplingParams,
    StreamEnd,
    TokenChunk,
)
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token


def worker_app(
    signaling_url: str,
    peer_id: str,
    ice_host_addresses: str = "127.0.0.1",
    drain_grace_s: float = 1.0,
    n_ctx: int = 512,
) -> web.Application:
    settings = WorkerSettings(
        signaling=signaling_url,
        token=SecretStr(token(Role.WORKER, peer_id)),
        ice_host_addresses=ice_host_addresses,
        drain_grace_s=drain_grace_s,
        n_ctx=n_ctx,
        port=0,
    )
    return create_worker(settings)


async def wait_for_worker(pool: PeerPool, worker_id: str, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while (peer := pool.peer) is None or peer.worker_id != worker_id:  # noqa: ASYNC110 (no event for "this worker")
            await asyncio.sleep(0.05)


async def test_pool_connects_and_reconnects_to_the_next_worker() -> None:
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        signaling = SignalingClient(url, token(Role.EDGE, "edge-1"), reconnect_max_s=1)
        metrics = EdgeMetrics()
        pool = PeerPool(
            signaling,
            metrics,
            PoolConfig(
                connect_timeout_s=10,
                policy=IcePolicy(host_addresses=("127.0.0.1",)),
                reconnect_min_s=0.1,
                reconnect_max_s=0.5,
            ),
        )
        signaling.start()
        pool.start()
        try:
            try:  # no worker yet: a caller gets a clear "no peer", not a hang
                await pool.acquire(timeout_s=0.5)
                raise AssertionError("acquire should fail without a worker")
            except NoPeerAvailable:
                pass
            async with serving(worker_app(url, "worker-a")):
                await wait_for_worker(pool, "worker-a")
                peer = await pool.acquire(timeout_s=1)
                assert peer.path.value == "direct"
                assert peer.model == "SmolLM2-135M-Instruct.Q4_1"
            # worker-a shut down: its link closes and the pool finds the next worker
            async with serving(worker_app(url, "worker-b")):
                await wait_for_worker(pool, "worker-b")
            text = metrics.render().decode()
            assert 'tandem_edge_cloud_connects_total{result="direct"} 2.0' in text
        finally:
            await pool.aclose()
            await signaling.aclose()


async def test_no_webrtc_path_falls_back_to_the_relay_then_upgrades() -> None:
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        signaling = SignalingClient(url, token(Role.EDGE, "edge-1"), reconnect_max_s=1)
        metrics = EdgeMetrics()
        pool = PeerPool(
            signaling,
            metrics,
            PoolConfig(
                ice_deadline_s=3,
                upgrade_interval_s=0.5,
                policy=IcePolicy(host_addresses=("127.0.0.1",)),
                reconnect_min_s=0.1,
            ),
        )
        signaling.start()
        pool.start()
        try:
            # This worker offers no ICE candidates at all: no WebRTC path can exist.
            async with serving(worker_app(url, "worker-z", ice_host_addresses="none")):
                await wait_for_worker(pool, "worker-z")
                relayed = await pool.acquire(timeout_s=1)
                assert relayed.path.value == "relay"
                request = GenerateRequest(
                    request_id="over-relay",
                    messages=(ChatMessage(role="user", content="Name a colour."),),
                    params=SamplingParams(max_tokens=5, temperature=0),
                )
                events = [e async for e in relayed.stream(request)]
                end = events[-1]
                assert isinstance(end, StreamEnd) and end.completion_tokens == 5
                # A worker reachable over WebRTC appears: new requests move to it.
                async with serving(worker_app(url, "worker-b")):
                    await wait_for_worker(pool, "worker-b")
                    upgraded = await pool.acquire(timeout_s=1)
                    assert upgraded.path.value == "direct"
                    await asyncio.wait_for(relayed.wait_closed(), 10)  # idle relay retired
                    text = metrics.render().decode()
                    assert 'tandem_edge_cloud_connects_total{result="relay"} 1.0' in text
                    assert 'tandem_edge_cloud_connects_total{result="direct"} 1.0' in text
        finally:
            await pool.aclose()
            await signaling.aclose()


async def test_a_draining_worker_hands_back_what_does_not_fit_and_the_pool_moves_on() -> None:
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        signaling = SignalingClient(url, token(Role.EDGE, "edge-1"), reconnect_max_s=1)
        pool = PeerPool(
            signaling,
            EdgeMetrics(),
            PoolConfig(policy=IcePolicy(host_addresses=("127.0.0.1",)), reconnect_min_s=0.1),
        )
        signaling.start()
        pool.start()
        try:
            async with serving(worker_app(url, "worker-b")):
                async with serving(worker_app(url, "worker-a", drain_grace_s=0.5)):
                    await wait_for_worker(pool, "worker-a")
                    doomed = await pool.acquire(timeout_s=1)
                    request = GenerateRequest(
                        request_id="long",
                        messages=(ChatMessage(role="user", content="Write a long story."),),
                        params=SamplingParams(max_tokens=2000, temperature=0),
                    )
                    events = doomed.stream(request)
                    assert isinstance(await anext(events), TokenChunk)
                # worker-a has shut down: Drain, 0.5 s of grace, then the rest came back
                with pytest.raises(NoPeerAvailable, match="shutting down"):
                    async for _ in events:
                        pass
                await events.aclose()
                await wait_for_worker(pool, "worker-b")  # new requests go to the other worker
        finally:
            await pool.aclose()
            await signaling.aclose()
