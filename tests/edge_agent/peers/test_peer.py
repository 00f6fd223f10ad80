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
from edge_agent.peers import Peer, PeerState, StreamInbox
from link import DataChannelLink
from link.probe import local_addresses
from shared.messages import (
    ChatMessage,
    ErrorCode,
    GenerateRequest,
    SamplingParams,
    StreamEnd,
    StreamFailed,
    TokenChunk,
)
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
async def connected(request: pytest.FixtureRequest) -> AsyncIterator[Connected]:
    max_queued_chunks = getattr(request, "param", 64)
    async with served_session(max_streams=8) as served:
        peer = Peer(
            served.edge,
            worker_id="w",
            first_token_timeout_s=30,
            token_timeout_s=30,
            max_queued_chunks=max_queued_chunks,
        )
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
    assert connected.peer.state is PeerState.CLOSED


async def test_drain_then_close_move_the_state_forward(connected: Connected) -> None:
    peer = connected.peer
    assert peer.state is PeerState.OPEN and not peer.draining
    await connected.session.drain(0)  # the worker says it is going away
    assert await asyncio.wait_for(peer.wait_left_open(), 30) is PeerState.DRAINING
    assert peer.draining and not peer.closed
    await connected.session.aclose()
    await asyncio.wait_for(peer.wait_closed(), 30)
    assert peer.state is PeerState.CLOSED and not peer.draining
    assert await peer.wait_left_open() is PeerState.CLOSED  # never back


async def test_an_open_peer_stays_open_past_the_wait(connected: Connected) -> None:
    assert await connected.peer.wait_left_open(timeout_s=0.05) is PeerState.OPEN


# ------------------------------------------------------------------ the per-stream bound


def chunk(text: str, n_tokens: int = 1) -> TokenChunk:
    return TokenChunk(request_id="r", text=text, n_tokens=n_tokens)


async def test_a_full_inbox_merges_chunks_and_keeps_every_token() -> None:
    inbox = StreamInbox(max_chunks=3)
    for i in range(10):
        inbox.put(chunk(str(i)))
        assert inbox.chunks <= 3
    end = StreamEnd(request_id="r", finish_reason="stop", prompt_tokens=1, completion_tokens=10)
    inbox.put(end)
    inbox.put(None)  # the link closing after the end changes nothing
    inbox.put(chunk("late"))
    assert inbox.ended
    items = [await inbox.get() for _ in range(4)]
    texts = [i.text for i in items if isinstance(i, TokenChunk)]
    assert texts == ["0", "1", "23456789"]
    assert sum(i.n_tokens for i in items if isinstance(i, TokenChunk)) == 10
    assert isinstance(items[-1], StreamEnd)
    assert inbox.chunks == 0


async def test_an_inbox_ends_once() -> None:
    inbox = StreamInbox(max_chunks=1)
    failed = StreamFailed(request_id="r", code=ErrorCode.BACKEND_ERROR, message="x", retryable=True)
    inbox.put(failed)
    inbox.put(None)
    assert isinstance(await inbox.get(), StreamFailed)
    with pytest.raises(TimeoutError):  # nothing more will ever come
        await asyncio.wait_for(inbox.get(), 0.05)


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamInbox(max_chunks=0)


@pytest.mark.parametrize("connected", [2], indirect=True)
async def test_a_slow_reader_keeps_its_stream_within_the_bound(connected: Connected) -> None:
    peer = connected.peer
    request = chat("slow", "Write a long story about a dragon.", 40)
    # Warm the worker's prompt cache, so that the two runs compared below start alike.
    _ = [e async for e in peer.stream(request.model_copy(update={"request_id": "warm"}))]
    chunks: list[TokenChunk] = []
    end: StreamEnd | None = None
    async with aclosing(peer.stream(request)) as events:
        async for event in events:
            if isinstance(event, StreamEnd):
                end = event
                continue
            assert isinstance(event, TokenChunk)
            if not chunks:  # dawdle until the worker has sent the whole stream
                await eventually(
                    lambda: (inbox := peer.inbox("slow")) is not None and inbox.ended,
                    what="the whole stream arrived",
                )
                inbox = peer.inbox("slow")
                assert inbox is not None and inbox.chunks <= 2
            chunks.append(event)
    assert end is not None and end.completion_tokens == 40
    assert sum(c.n_tokens for c in chunks) == 40
    assert len(chunks) <= 3
    fast = [e async for e in peer.stream(request.model_copy(update={"request_id": "fast"}))]
    assert "".join(c.text for c in chunks) == "".join(
        e.text for e in fast if isinstance(e, TokenChunk)
    )


# ----------------------------------------------------------- after a network change


async def test_a_recheck_keeps_a_link_whose_worker_answers(connected: Connected) -> None:
    assert await connected.peer.recheck(within_s=30)
    assert connected.peer.state is PeerState.OPEN
    events = [e async for e in connected.peer.stream(chat("p5", "Name a colour.", 3))]
    assert isinstance(events[-1], StreamEnd)


async def test_a_recheck_unanswered_closes_the_link_and_fails_its_streams_now(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    """The far end reads nothing and answers nothing, as over a path whose address is
    gone. With a heartbeat that would take an hour to call it dead, only the recheck
    explains the stream failing (it then fails over, in the engine above)."""
    edge_link, _silent = pair
    peer = Peer(
        edge_link,
        worker_id="w",
        first_token_timeout_s=3600,
        token_timeout_s=3600,
        heartbeat_s=3600,
        dead_after_s=3600,
    )
    peer.start()
    try:
        stream = asyncio.get_running_loop().create_task(
            anext(peer.stream(chat("p6", "Write a long story.", 900)))
        )
        await eventually(lambda: peer.inbox("p6") is not None, what="the stream under way")
        assert not await peer.recheck(within_s=0.2)
        assert peer.closed
        with pytest.raises(TransportClosed):
            await asyncio.wait_for(stream, 30)
    finally:
        await peer.aclose()


async def test_a_link_that_left_from_a_lost_address_is_closed_without_waiting(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    """The link knows the address it leaves from (the nominated ICE pair's host): once
    that address is gone there is nothing to wait for, however long the ping window."""
    edge_link, _silent = pair
    local = edge_link.local_address
    assert local is not None and local in local_addresses() | {"127.0.0.1", "::1"}
    peer = Peer(edge_link, worker_id="w", first_token_timeout_s=3600, token_timeout_s=3600)
    peer.start()
    try:
        assert not await asyncio.wait_for(peer.recheck(within_s=3600, lost=frozenset({local})), 30)
        assert peer.closed
    finally:
        await peer.aclose()
