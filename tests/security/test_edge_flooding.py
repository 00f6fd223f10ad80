"""Issue 13, item 7: one edge token must not take a worker from the others.

Real signaling and real worker apps (the bundled model), in this loop on loopback; the
flooding edge speaks through the real ``SignalingClient`` and edge pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from cloud_worker.app import create_app as create_worker
from cloud_worker.settings import WorkerSettings
from edge_agent.engines.base import EngineEvent
from edge_agent.errors import NoPeerAvailable
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import Peer, PeerPool
from link import SignalingClient, SignalingRefused, create_offer
from shared.messages import ChatMessage, GenerateRequest, Offer, Role, SamplingParams
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.edge import LOOPBACK_POOL, wait_for_workers
from tests.support.rtc import LOOPBACK
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@asynccontextmanager
async def stack(**worker: Any) -> AsyncIterator[tuple[str, int]]:
    """Signaling and one real worker registered with it: (signaling URL, worker port)."""
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        settings = WorkerSettings(
            signaling=url,
            token=SecretStr(token(Role.WORKER, "worker-shared")),
            ice_host_addresses="127.0.0.1",
            n_ctx=512,
            port=0,
            **worker,
        )
        async with serving(create_worker(settings)) as worker_port:
            await wait_for_workers(url, 1)
            yield url, worker_port


@asynccontextmanager
async def edge_client(url: str, edge_id: str) -> AsyncIterator[SignalingClient]:
    client = SignalingClient(url, token(Role.EDGE, edge_id), reconnect_max_s=1)
    client.start()
    try:
        await client.wait_connected(10)
        yield client
    finally:
        await client.aclose()


async def metric(http: aiohttp.ClientSession, url: str, series: str) -> float:
    async with http.get(url) as response:
        for line in (await response.text()).splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return 0.0


async def test_one_edge_cannot_flood_a_worker_with_offers() -> None:
    """Ten offers at once from one edge token. Before the fix signaling forwarded all
    ten (each a peer connection on the worker, and with TURN an allocation); now the
    first four (--max-pending-offers-per-edge) go on and the rest get a SignalError
    that says why. Relay opens were capped per edge already: still so."""
    async with (
        stack() as (url, worker_port),
        edge_client(url, "edge-flood") as edge,
        aiohttp.ClientSession() as http,
    ):
        offers = [
            asyncio.create_task(
                edge.request_answer(Offer(session_id=f"flood-{i}", sdp="v=0 junk"), 60)
            )
            for i in range(10)
        ]
        refused: list[SignalingRefused] = []

        def count_refusals() -> bool:
            for task in offers:
                if task.done() and isinstance(task.exception(), SignalingRefused):
                    refused.append(task.exception())  # type: ignore[arg-type]
                    offers.remove(task)
            return len(refused) >= 6

        await eventually(count_refusals, what="six offers refused")
        assert len(offers) == 4
        assert all("--max-pending-offers-per-edge" in str(r) for r in refused)
        signaling = url.replace("ws://", "http://").replace("/v1/signal", "/metrics")
        offers_total = "tandem_signaling_offers_total"
        assert await metric(http, signaling, f'{offers_total}{{result="matched"}}') == 4
        worker = f"http://127.0.0.1:{worker_port}/metrics"
        bad = 'tandem_worker_offers_total{result="bad_offer"}'
        await eventually(
            lambda: _equals(metric(http, worker, bad), 4), what="four offers at the worker"
        )
        for task in offers:
            task.cancel()

        relays = [
            asyncio.create_task(
                edge.relays.open(f"relay-{i}", model="", timeout_s=60, max_frame_bytes=16_384)
            )
            for i in range(6)
        ]
        opened, _ = await asyncio.wait(relays)
        outcomes = [t.exception() for t in opened]
        assert sum(isinstance(e, SignalingRefused) for e in outcomes) == 2
        for relay in opened:
            if relay.exception() is None:
                link, _ = relay.result()
                await link.aclose()


async def _equals(value: Any, expected: float) -> bool:
    return bool(await value == expected)


def request(n: int, max_tokens: int = 200) -> GenerateRequest:
    return GenerateRequest(
        request_id=f"req-{n}-{uuid.uuid4().hex[:6]}",
        messages=(ChatMessage(role="user", content="Count to a thousand."),),
        params=SamplingParams(max_tokens=max_tokens, temperature=0),
    )


@asynccontextmanager
async def linked_pool(url: str, edge_id: str) -> AsyncIterator[Peer]:
    signaling = SignalingClient(url, token(Role.EDGE, edge_id), reconnect_max_s=1)
    pool = PeerPool(signaling, EdgeMetrics(), replace(LOOPBACK_POOL, warm_standby=False))
    signaling.start()
    pool.start()
    try:
        yield await pool.acquire(30)
    finally:
        await pool.aclose()
        await signaling.aclose()


async def first_event(stream: AsyncGenerator[EngineEvent, None]) -> EngineEvent:
    return await anext(stream)


async def test_one_edge_cannot_take_every_slot_of_a_shared_worker() -> None:
    """Two edges on one worker (one instance, three may wait: four streams at once).
    Edge A sends six streams at once. Before the fix A took all four slots (its limit
    was 32 streams) and edge B's request was refused as overloaded; now A gets its
    share (--edge-share 0.5: two) and B's request is taken."""
    async with stack(parallel=1, max_queue=3) as (url, worker_port), AsyncExitStack() as stack_:
        peer_a = await stack_.enter_async_context(linked_pool(url, "edge-a"))
        peer_b = await stack_.enter_async_context(linked_pool(url, "edge-b"))
        http = await stack_.enter_async_context(aiohttp.ClientSession())
        health = f"http://127.0.0.1:{worker_port}/healthz"

        async def active() -> int:
            async with http.get(health) as response:
                return int((await response.json())["active_streams"])

        streams_a = [peer_a.stream(request(i)) for i in range(6)]
        firsts_a = [asyncio.create_task(first_event(s)) for s in streams_a]
        stack_.push_async_callback(close_streams, streams_a, firsts_a)

        async def a_settled() -> bool:
            refused = sum(t.done() and isinstance(t.exception(), NoPeerAvailable) for t in firsts_a)
            return refused + await active() == 6

        await eventually(a_settled, what="edge A's streams taken or refused")
        taken_by_a = await active()
        assert taken_by_a == 2

        stream_b = peer_b.stream(request(99, max_tokens=4))
        first_b = asyncio.create_task(first_event(stream_b))
        stack_.push_async_callback(close_streams, [stream_b], [first_b])

        async def b_settled() -> bool:
            return first_b.done() or await active() == taken_by_a + 1

        await eventually(b_settled, what="edge B's stream taken or refused")
        assert not first_b.done() or first_b.exception() is None, first_b.exception()
        await close_streams(streams_a, firsts_a)  # edge A's clients go away: B's turn
        assert (await asyncio.wait_for(first_b, 120)) is not None


async def close_streams(
    streams: list[AsyncGenerator[EngineEvent, None]], readers: list[asyncio.Task[EngineEvent]]
) -> None:
    """Stop reading, then close (which cancels each stream on the worker)."""
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for stream in streams:
        with contextlib.suppress(Exception):
            await stream.aclose()


async def test_one_edge_cannot_hold_every_peer_connection() -> None:
    """Offers answered but never connected still hold a peer connection on the worker
    (until its connect timeout). Before the fix one edge could stack them up; now its
    offers past --max-links-per-edge are not answered (metric offers_total refused)."""
    async with (
        stack(max_links_per_edge=2) as (url, worker_port),
        edge_client(url, "edge-hoard") as edge,
        aiohttp.ClientSession() as http,
        AsyncExitStack() as offers,
    ):
        for n in range(2):
            offer = await create_offer((), LOOPBACK)
            offers.push_async_callback(offer.aclose)
            answer = await edge.request_answer(Offer(session_id=f"hoard-{n}", sdp=offer.sdp), 30)
            assert answer.sdp
        third = await create_offer((), LOOPBACK)
        offers.push_async_callback(third.aclose)
        unanswered = asyncio.create_task(
            edge.request_answer(Offer(session_id="hoard-2", sdp=third.sdp), 60)
        )
        worker = f"http://127.0.0.1:{worker_port}/metrics"
        refused = 'tandem_worker_offers_total{result="refused"}'
        await eventually(
            lambda: _equals(metric(http, worker, refused), 1), what="the third offer refused"
        )
        assert not unanswered.done()
        unanswered.cancel()
