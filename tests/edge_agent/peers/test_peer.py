"""``Peer`` (edge side) against a real worker ``EdgeSession`` over a real data channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import pytest
import pytest_asyncio

from cloud_worker.edge_session import EdgeSession
from edge_agent.errors import ContextTooLong, TransportClosed
from edge_agent.peers import Peer
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.wait import eventually
from tests.support.worker import Served, served_session


@dataclass
class Connected:
    peer: Peer
    served: Served

    @property
    def session(self) -> EdgeSession:
        return self.served.session


@pytest_asyncio.fixture
async def connected() -> AsyncIterator[Connected]:
    async with served_session(max_streams=8) as served:
        peer = Peer(served.edge, worker_id="w", first_token_timeout_s=30, token_timeout_s=30)
        peer.start()
        try:
            yield Connected(peer, served)
        finally:
            await peer.aclose()


def chat(rid: str, text: str, max_tokens: int) -> GenerateRequest:
    return GenerateRequest(
        request_id=rid,
        messages=(ChatMessage(role="user", content=text),),
        params=SamplingParams(max_tokens=max_tokens, temperature=0),
    )


async def test_stream_returns_the_workers_tokens(connected: Connected) -> None:
    events = [e async for e in connected.peer.stream(chat("p1", "Name an animal.", 7))]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.completion_tokens == 7
    assert "".join(e.text for e in events if isinstance(e, TokenChunk)).strip()


async def test_closing_the_stream_early_cancels_on_the_worker(connected: Connected) -> None:
    async with aclosing(connected.peer.stream(chat("p2", "Write a long poem.", 900))) as events:
        async for event in events:
            assert isinstance(event, TokenChunk)
            break
    await eventually(lambda: connected.session.active == 0, what="the worker's stream cancelled")


async def test_worker_errors_become_edge_errors(connected: Connected) -> None:
    with pytest.raises(ContextTooLong):
        async for _ in connected.peer.stream(chat("p3", "word " * 3000, 4)):
            pass


async def test_link_loss_fails_open_streams_at_once(connected: Connected) -> None:
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in connected.peer.stream(chat("p4", "Write a long story.", 900)):
            got_first.set()

    task = asyncio.get_running_loop().create_task(consume())
    await asyncio.wait_for(got_first.wait(), 30)
    await connected.session.aclose()  # the worker side goes away
    with pytest.raises(TransportClosed):
        await asyncio.wait_for(task, 10)
    assert connected.peer.closed
