"""``PeerPool``: a warm link as soon as a worker exists, a new one when it goes away,
the relay when WebRTC cannot connect, and the move off a draining worker.

Real signaling and worker apps (in this loop), real WebRTC on loopback, the real model.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import replace

import pytest

from edge_agent.errors import NoPeerAvailable
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.apps import serving
from tests.support.edge import (
    LOOPBACK_POOL,
    edge_pool,
    linked_worker,
    wait_for_worker,
    wait_for_workers,
    worker_app,
)
from tests.support.wait import eventually


async def test_pool_connects_and_reconnects_to_the_next_worker() -> None:
    # One worker at a time here: no standby (its own test is below), links counted exactly.
    config = replace(LOOPBACK_POOL, connect_timeout_s=10, reconnect_max_s=0.5, warm_standby=False)
    async with edge_pool(config) as edge:
        with pytest.raises(NoPeerAvailable):  # no worker yet: a clear "no peer", not a hang
            await edge.pool.acquire(timeout_s=0.5)
        async with linked_worker(edge.pool, edge.url, "worker-a"):
            peer = await edge.pool.acquire(timeout_s=1)
            assert peer.path.value == "direct"
            assert peer.model == "SmolLM2-135M-Instruct.Q4_1"
        # worker-a shut down: its link closes and the pool finds the next worker
        async with linked_worker(edge.pool, edge.url, "worker-b"):
            pass  # entered once the pool's live peer is worker-b
        text = edge.metrics.render().decode()
        assert 'tandem_edge_cloud_connects_total{result="direct"} 2.0' in text


async def test_no_webrtc_path_falls_back_to_the_relay_then_upgrades() -> None:
    # The upgrade alone, links counted exactly: a standby would open links of its own.
    config = replace(LOOPBACK_POOL, ice_deadline_s=3, upgrade_interval_s=0.5, warm_standby=False)
    # worker-z offers no ICE candidates at all: no WebRTC path can exist.
    async with (
        edge_pool(config) as edge,
        linked_worker(edge.pool, edge.url, "worker-z", ice_host_addresses="none"),
    ):
        relayed = await edge.pool.acquire(timeout_s=1)
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
        async with linked_worker(edge.pool, edge.url, "worker-b"):
            upgraded = await edge.pool.acquire(timeout_s=1)
            assert upgraded.path.value == "direct"
            await asyncio.wait_for(relayed.wait_closed(), 30)  # idle relay retired
            text = edge.metrics.render().decode()
            assert 'tandem_edge_cloud_connects_total{result="relay"} 1.0' in text
            assert 'tandem_edge_cloud_connects_total{result="direct"} 1.0' in text


async def test_a_draining_worker_hands_back_what_does_not_fit_and_the_pool_moves_on() -> None:
    async with edge_pool() as edge, AsyncExitStack() as worker_a:
        # worker-a first, so that the pool links to it; worker-b is the standby.
        await worker_a.enter_async_context(
            linked_worker(edge.pool, edge.url, "worker-a", drain_grace_s=0)
        )
        async with serving(worker_app(edge.url, "worker-b")):
            await wait_for_workers(edge.url, 2)
            doomed = await edge.pool.acquire(timeout_s=1)
            request = GenerateRequest(
                request_id="long",
                messages=(ChatMessage(role="user", content="Write a long story."),),
                params=SamplingParams(max_tokens=2000, temperature=0),
            )
            events = doomed.stream(request)
            assert isinstance(await anext(events), TokenChunk)
            await worker_a.aclose()
            # worker-a has shut down: Drain, no grace, then the stream came back
            with pytest.raises(NoPeerAvailable, match="shutting down"):
                async for _ in events:
                    pass
            await events.aclose()
            await wait_for_worker(edge.pool, "worker-b")  # new requests go to the other worker


async def test_a_warm_standby_on_another_worker_takes_over_without_a_handshake() -> None:
    async with edge_pool() as edge, AsyncExitStack() as worker_a:
        await worker_a.enter_async_context(
            linked_worker(edge.pool, edge.url, "worker-a", drain_grace_s=0)
        )
        assert edge.pool.standby is None, "one worker: nothing to stand by on"
        async with serving(worker_app(edge.url, "worker-b")):
            await eventually(
                lambda: edge.pool.standby is not None and edge.pool.standby.worker_id == "worker-b",
                what="a warm standby on the second worker",
            )
            standby = edge.pool.standby
            assert edge.metrics.registry.get_sample_value("tandem_edge_cloud_standby") == 1
            links = edge.metrics.registry.get_sample_value(
                "tandem_edge_cloud_connects_total", {"result": "direct"}
            )
            doomed = await edge.pool.acquire(timeout_s=1)
            assert doomed.worker_id == "worker-a"
            request = GenerateRequest(
                request_id="long",
                messages=(ChatMessage(role="user", content="Write a long story."),),
                params=SamplingParams(max_tokens=2000, temperature=0),
            )
            events = doomed.stream(request)
            assert isinstance(await anext(events), TokenChunk)
            await worker_a.aclose()  # drains with no grace: the stream comes back
            with pytest.raises(NoPeerAvailable, match="shutting down"):
                async for _ in events:
                    pass
            await events.aclose()
            assert await edge.pool.acquire(timeout_s=1) is standby, "the standby took over"
            after = edge.metrics.registry.get_sample_value(
                "tandem_edge_cloud_connects_total", {"result": "direct"}
            )
            assert after == links, "no new link was opened for the failover"


async def test_a_relayed_primary_ends_on_the_direct_worker_with_the_relay_as_standby() -> None:
    config = replace(LOOPBACK_POOL, ice_deadline_s=3, upgrade_interval_s=0.5)
    async with (
        edge_pool(config) as edge,
        linked_worker(edge.pool, edge.url, "worker-z", ice_host_addresses="none"),
    ):
        relayed = await edge.pool.acquire(timeout_s=1)
        assert relayed.path.value == "relay"
        async with serving(worker_app(edge.url, "worker-b")):

            def settled() -> bool:
                peer, standby = edge.pool.peer, edge.pool.standby
                return (
                    peer is not None
                    and (peer.worker_id, peer.path.value) == ("worker-b", "direct")
                    and standby is not None
                    and standby.worker_id == "worker-z"
                )

            # Whether by swapping in the standby or by an upgrade, the primary ends direct
            # and the relayed worker stands by.
            await eventually(settled, what="primary direct on worker-b, worker-z standing by")


def test_which_links_are_worth_lifting() -> None:
    from edge_agent.peers.upgrade import Upgrade, better_path_to_try
    from link import PathKind

    assert better_path_to_try(PathKind.RELAY, force_relay=False) is Upgrade.WEBRTC
    assert better_path_to_try(PathKind.TURN_UDP, force_relay=False) is Upgrade.DIRECT
    assert better_path_to_try(PathKind.TURN_TCP, force_relay=False) is Upgrade.DIRECT
    assert better_path_to_try(PathKind.TURN_TLS, force_relay=False) is Upgrade.DIRECT
    assert better_path_to_try(PathKind.DIRECT, force_relay=False) is None
    assert better_path_to_try(PathKind.RELAY, force_relay=True) is None
    # A path that could not be told is left alone: lifting would replace it every interval.
    assert better_path_to_try(PathKind.UNKNOWN, force_relay=False) is None
    assert {p for p in PathKind if better_path_to_try(p, force_relay=False)} == {
        PathKind.RELAY,
        PathKind.TURN_UDP,
        PathKind.TURN_TCP,
        PathKind.TURN_TLS,
    }
