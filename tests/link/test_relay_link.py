"""``RelayLink``: frames between two peers through a real signaling server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from pydantic import SecretStr

from link import LinkClosed, PathKind, RelayLink, SignalingClient, SignalingRefused
from shared.messages import (
    GenerateRequest,
    Ping,
    Pong,
    RelayData,
    Role,
    SamplingParams,
)
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.edge import wait_for_workers
from tests.support.relay import relay_worker


@dataclass
class Pair:
    edge: RelayLink
    worker: RelayLink
    edge_client: SignalingClient


@pytest_asyncio.fixture
async def relayed() -> AsyncIterator[Pair]:
    settings = SignalingSettings(secret=SecretStr(SECRET))
    async with serving(create_app(settings)) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        relaying = relay_worker(url, capacity=1)
        worker = relaying.client
        edge = SignalingClient(url, token(Role.EDGE, "edge-1"))
        worker.start()
        edge.start()
        try:
            await worker.wait_connected(30)
            await edge.wait_connected(30)
            await wait_for_workers(url, 1)  # the worker's Register reached signaling
            edge_link, accept = await edge.relays.open(
                "sess-1", model="", timeout_s=5, max_frame_bytes=4096
            )
            assert accept.peer_id == "worker-1" and accept.model == "m"
            yield Pair(edge_link, await asyncio.wait_for(relaying.accepted.get(), 30), edge)
        finally:
            await edge.aclose()
            await worker.aclose()


async def test_messages_cross_the_relay_both_ways(relayed: Pair) -> None:
    assert relayed.edge.path is PathKind.RELAY
    await relayed.edge.send(Ping(nonce=1))
    assert await asyncio.wait_for(relayed.worker.recv(), 30) == Ping(nonce=1)
    await relayed.worker.send(Pong(nonce=1))
    assert await asyncio.wait_for(relayed.edge.recv(), 30) == Pong(nonce=1)


async def test_large_messages_are_split_into_relay_frames(relayed: Pair) -> None:
    request = GenerateRequest(
        request_id="big", prompt="lorem ipsum " * 5000, params=SamplingParams(max_tokens=1)
    )
    await relayed.edge.send(request)
    assert await asyncio.wait_for(relayed.worker.recv(), 30) == request


async def test_closing_one_end_closes_the_other(relayed: Pair) -> None:
    await relayed.worker.aclose()
    with pytest.raises(LinkClosed):
        await asyncio.wait_for(relayed.edge.recv(), 30)


async def test_signaling_refuses_frames_for_a_session_it_did_not_broker(relayed: Pair) -> None:
    # A peer may only send on sessions signaling opened for it.
    stranger = relayed.edge_client.relays.link("not-brokered", max_frame_bytes=4096)
    await relayed.edge_client.send(RelayData(session_id="not-brokered", data=b"\x00"))
    with pytest.raises(LinkClosed):
        await asyncio.wait_for(stranger.recv(), 30)
    # ...and the real session is unharmed.
    await relayed.edge.send(Ping(nonce=9))
    assert await asyncio.wait_for(relayed.worker.recv(), 30) == Ping(nonce=9)


async def test_no_worker_means_a_refusal() -> None:
    async with serving(create_app(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        edge = SignalingClient(f"ws://127.0.0.1:{port}/v1/signal", token(Role.EDGE, "edge-1"))
        edge.start()
        try:
            await edge.wait_connected(30)
            with pytest.raises(SignalingRefused):
                await edge.relays.open("s", model="", timeout_s=5, max_frame_bytes=4096)
        finally:
            await edge.aclose()
