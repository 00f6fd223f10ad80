"""``RelayLink``: frames between two peers through a real signaling server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from pydantic import SecretStr

from link import LinkClosed, PathKind, RelayLink, SignalingClient, SignalingRefused
from shared.messages import (
    GenerateRequest,
    Message,
    Ping,
    Pong,
    Register,
    RelayData,
    RelayOpen,
    Role,
    SamplingParams,
)
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.wait import eventually


async def signaling_has_worker(port: int) -> None:
    async with aiohttp.ClientSession() as http:

        async def registered() -> bool:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                return bool((await resp.json())["workers"] >= 1)

        await eventually(registered, what="the worker registered with signaling")


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
        accepted: asyncio.Queue[RelayLink] = asyncio.Queue()
        worker: SignalingClient

        async def on_worker_message(message: Message) -> None:
            if isinstance(message, RelayOpen):
                link = await worker.accept_relay(message, model="m", max_frame_bytes=4096)
                accepted.put_nowait(link)

        worker = SignalingClient(
            url,
            token(Role.WORKER, "worker-1"),
            on_message=on_worker_message,
            hello=lambda: (Register(models=("m",), capacity=1),),
        )
        edge = SignalingClient(url, token(Role.EDGE, "edge-1"))
        worker.start()
        edge.start()
        try:
            await worker.wait_connected(30)
            await edge.wait_connected(30)
            await signaling_has_worker(port)  # the worker's Register reached signaling
            edge_link, accept = await edge.open_relay(
                "sess-1", model="", timeout_s=5, max_frame_bytes=4096
            )
            assert accept.peer_id == "worker-1" and accept.model == "m"
            yield Pair(edge_link, await asyncio.wait_for(accepted.get(), 30), edge)
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
    stranger = relayed.edge_client.relay_link("not-brokered", max_frame_bytes=4096)
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
                await edge.open_relay("s", model="", timeout_s=5, max_frame_bytes=4096)
        finally:
            await edge.aclose()
