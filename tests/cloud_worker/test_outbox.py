"""``Outbox`` over a real loopback data channel: chunks merge while the channel has not
drained, never the first one on an idle channel, and nothing is lost or reordered.

The backlog is aiortc's own: ``send`` queues a message and raises ``bufferedAmount``
until aiortc's flush task runs, so frames handed over before this test yields find the
channel not drained (no timing involved)."""

from __future__ import annotations

import asyncio

import pytest

from cloud_worker.outbox import Outbox
from edge_agent.peers.guard import StreamBounds, StreamGuard
from link import DataChannelLink
from shared.codec import MAX_MESSAGE_BYTES
from shared.errors import FrameTooLarge
from shared.messages import (
    ErrorCode,
    GenerateRequest,
    Message,
    SamplingParams,
    StreamEnd,
    StreamFailed,
    TokenChunk,
    TokenLogprob,
)


def chunk(rid: str, i: int, logprobs: bool = False) -> TokenChunk:
    text = f" t{i}é"
    scored = (TokenLogprob(token=text, logprob=-0.5 - i),) if logprobs else ()
    return TokenChunk(request_id=rid, text=text, n_tokens=1, logprobs=scored)


async def received_until_end(edge: DataChannelLink, ends: int) -> list[Message]:
    got: list[Message] = []
    while ends:
        message = await asyncio.wait_for(edge.recv(), 30)
        got.append(message)
        ends -= isinstance(message, StreamEnd)
    return got


async def test_chunks_merge_while_the_channel_is_backed_up_and_nothing_is_lost(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    edge, worker = pair
    outbox = Outbox(worker)
    n = 200
    assert worker.backlog_bytes == 0
    await outbox.send("r", chunk("r", 0, logprobs=True))  # idle channel: sent as it is
    assert worker.backlog_bytes > 0, "aiortc has not flushed yet: the channel is backed up"
    for i in range(1, n):
        await outbox.send("r", chunk("r", i, logprobs=True))
    end = StreamEnd(request_id="r", finish_reason="length", prompt_tokens=3, completion_tokens=n)
    await outbox.send("r", end)
    await outbox.settle("r")

    got = await received_until_end(edge, 1)
    chunks = [m for m in got if isinstance(m, TokenChunk)]
    assert got[-1] == end and len(chunks) == len(got) - 1
    assert chunks[0] == chunk("r", 0, logprobs=True), "the first token went out untouched"
    assert len(chunks) < n / 10, f"{len(chunks)} frames for {n} tokens: not coalesced"
    assert outbox.merged == n - len(chunks)
    assert "".join(c.text for c in chunks) == "".join(chunk("r", i).text for i in range(n))
    assert sum(c.n_tokens for c in chunks) == n
    assert [lp.logprob for c in chunks for lp in c.logprobs] == [-0.5 - i for i in range(n)]
    # What the edge checks on every stream accepts the merged chunks and the end.
    request = GenerateRequest(request_id="r", prompt="x", params=SamplingParams(max_tokens=n))
    guard = StreamGuard(request, StreamBounds())
    assert all(guard.admit(m) for m in got)  # type: ignore[arg-type]
    assert guard.tokens == n
    await outbox.aclose()


async def test_streams_keep_their_own_order_and_a_merge_stops_at_its_bound(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    edge, worker = pair
    outbox = Outbox(worker, max_merge_chars=40)
    n = 60
    for i in range(n):  # two streams interleaved, as concurrent streams are
        for rid in ("a", "b"):
            await outbox.send(rid, chunk(rid, i))
    for rid in ("a", "b"):
        end = StreamEnd(
            request_id=rid, finish_reason="length", prompt_tokens=1, completion_tokens=n
        )
        await outbox.send(rid, end)
    await outbox.settle("a")
    await outbox.settle("b")

    got = await received_until_end(edge, 2)
    for rid in ("a", "b"):
        mine = [m for m in got if m.request_id == rid]  # type: ignore[attr-defined]
        chunks = [m for m in mine if isinstance(m, TokenChunk)]
        assert isinstance(mine[-1], StreamEnd), "the end came after every chunk"
        assert "".join(c.text for c in chunks) == "".join(chunk(rid, i).text for i in range(n))
        assert sum(c.n_tokens for c in chunks) == n
        assert all(len(c.text) <= 40 for c in chunks)
        assert len(chunks) < n
    await outbox.aclose()


async def test_a_frame_on_an_idle_channel_is_sent_at_once(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    edge, worker = pair
    outbox = Outbox(worker)
    await outbox.send("r", chunk("r", 0))
    # Handed to the channel before ``send`` returned: nothing waits in the outbox.
    assert worker.backlog_bytes > 0
    await outbox.settle("r")
    assert outbox.merged == 0
    assert await asyncio.wait_for(edge.recv(), 30) == chunk("r", 0)
    await outbox.aclose()


async def test_a_queued_frame_the_link_refuses_fails_its_stream_only(
    pair: tuple[DataChannelLink, DataChannelLink],
) -> None:
    edge, worker = pair
    outbox = Outbox(worker)
    await outbox.send("a", chunk("a", 0))  # the channel is now backed up
    huge = TokenChunk(request_id="b", text="x" * (MAX_MESSAGE_BYTES + 1), n_tokens=1)
    await outbox.send("b", huge)  # queued: refused only when the writer sends it
    await outbox.send("a", chunk("a", 1))
    with pytest.raises(FrameTooLarge):
        await outbox.settle("b")
    failed = StreamFailed(request_id="b", code=ErrorCode.BACKEND_ERROR, message="too large")
    await outbox.send("b", failed)  # the stream's failure goes out as usual
    await outbox.settle("b")
    await outbox.settle("a")
    got = [await asyncio.wait_for(edge.recv(), 30) for _ in range(3)]
    assert chunk("a", 0) in got and chunk("a", 1) in got and failed in got
    assert not worker.closed
    await outbox.aclose()
