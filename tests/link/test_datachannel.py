"""``DataChannelLink`` over a real aiortc connection on loopback."""

from __future__ import annotations

import asyncio

import pytest

from link import DataChannelLink, LinkClosed, PathKind
from shared.codec import MAX_MESSAGE_BYTES
from shared.errors import FrameTooLarge
from shared.messages import GenerateRequest, Ping, Pong, SamplingParams, TokenChunk
from tests.support.rtc import open_pair
from tests.support.wait import eventually

Pair = tuple[DataChannelLink, DataChannelLink]


async def test_messages_flow_both_ways_on_a_direct_path(pair: Pair) -> None:
    edge, worker = pair
    assert edge.path is PathKind.DIRECT
    assert worker.path is PathKind.DIRECT
    await edge.send(Ping(nonce=7))
    assert await asyncio.wait_for(worker.recv(), 30) == Ping(nonce=7)
    await worker.send(Pong(nonce=7))
    assert await asyncio.wait_for(edge.recv(), 30) == Pong(nonce=7)


async def test_a_message_larger_than_a_frame_is_split_and_reassembled(pair: Pair) -> None:
    edge, worker = pair
    prompt = "".join(f"line {i}: the quick brown fox\n" for i in range(8000))  # ~230 kB
    request = GenerateRequest(request_id="big", prompt=prompt, params=SamplingParams(max_tokens=4))
    await edge.send(request)
    received = await asyncio.wait_for(worker.recv(), 30)
    assert received == request


async def test_order_is_kept_under_load(pair: Pair) -> None:
    edge, worker = pair
    chunks = [TokenChunk(request_id="r", text=f"tok{i} " * 50, n_tokens=1) for i in range(500)]
    for chunk in chunks:
        await worker.send(chunk)
    got = [await asyncio.wait_for(edge.recv(), 30) for _ in chunks]
    assert got == chunks


async def test_garbage_frame_closes_only_that_link() -> None:
    edge_a, worker_a = await open_pair()
    edge_b, worker_b = await open_pair()
    try:
        edge_a._channel.send(b"\xc1 not msgpack")  # what a hostile peer would send
        with pytest.raises(LinkClosed):
            await asyncio.wait_for(worker_a.recv(), 30)
        assert worker_a.closed
        await edge_b.send(Ping(nonce=1))
        assert await asyncio.wait_for(worker_b.recv(), 30) == Ping(nonce=1)
    finally:
        for link in (edge_a, worker_a, edge_b, worker_b):
            await link.aclose()


async def test_a_peer_that_overruns_the_receive_queue_loses_its_link() -> None:
    edge, worker = await open_pair(max_queued_frames=4)
    try:
        for nonce in range(10):  # the worker reads none of them
            await edge.send(Ping(nonce=nonce))
        await eventually(lambda: worker.closed, what="the overrun link closed")
        received = []
        with pytest.raises(LinkClosed):
            while True:
                received.append(await asyncio.wait_for(worker.recv(), 30))
        assert len(received) <= 4  # never more than the bound was held
        nonces = [m.nonce for m in received if isinstance(m, Ping)]
        assert len(nonces) == len(received) and nonces == sorted(nonces)
    finally:
        await edge.aclose()
        await worker.aclose()


async def test_closing_one_side_is_seen_by_the_other(pair: Pair) -> None:
    edge, worker = pair
    await edge.aclose()
    with pytest.raises(LinkClosed):
        await asyncio.wait_for(worker.recv(), 15)
    with pytest.raises(LinkClosed):
        await edge.send(Ping(nonce=2))
    await edge.aclose()  # idempotent


async def test_a_message_the_peer_would_refuse_is_not_sent(pair: Pair) -> None:
    """Past the protocol's message limit the peer would drop the link with every stream
    on it: the sender refuses instead, and the link carries on."""
    edge, worker = pair
    prompt = "x" * MAX_MESSAGE_BYTES
    with pytest.raises(FrameTooLarge):
        await edge.send(GenerateRequest(request_id="huge", prompt=prompt))
    await edge.send(Ping(nonce=1))
    assert await asyncio.wait_for(worker.recv(), 30) == Ping(nonce=1)
    assert not edge.closed and not worker.closed
