"""``EdgeSession`` over a real data channel with the real model behind ``LlamaBackend``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from link import DataChannelLink, LinkClosed
from shared.messages import (
    Cancel,
    ChatMessage,
    ErrorCode,
    GenerateRequest,
    Message,
    Ping,
    Pong,
    SamplingParams,
    StreamEnd,
    StreamFailed,
    TokenChunk,
)
from tests.support.wait import eventually
from tests.support.worker import Served, served_session


@pytest_asyncio.fixture
async def served() -> AsyncIterator[Served]:
    async with served_session(max_streams=3) as served:
        yield served


def chat(rid: str, text: str, max_tokens: int = 8) -> GenerateRequest:
    return GenerateRequest(
        request_id=rid,
        messages=(ChatMessage(role="user", content=text),),
        params=SamplingParams(max_tokens=max_tokens, temperature=0),
    )


async def until_end(edge: DataChannelLink, rid: str) -> list[Message]:
    got: list[Message] = []
    while True:
        message = await asyncio.wait_for(edge.recv(), 30)
        got.append(message)
        if isinstance(message, StreamEnd | StreamFailed) and message.request_id == rid:
            return got


async def test_a_request_streams_chunks_then_ends_with_usage(served: Served) -> None:
    await served.edge.send(chat("r1", "Name a fruit.", max_tokens=8))
    got = await until_end(served.edge, "r1")
    chunks = [m for m in got if isinstance(m, TokenChunk)]
    end = got[-1]
    assert isinstance(end, StreamEnd)
    assert "".join(c.text for c in chunks).strip()
    assert end.completion_tokens == 8 == sum(c.n_tokens for c in chunks)
    assert end.finish_reason == "length"
    assert end.prompt_tokens > 0


async def test_two_concurrent_streams_share_one_channel(served: Served) -> None:
    await served.edge.send(chat("a", "Count to three.", max_tokens=6))
    await served.edge.send(chat("b", "Name a colour.", max_tokens=6))
    ends: dict[str, StreamEnd] = {}
    texts: dict[str, str] = {"a": "", "b": ""}
    while len(ends) < 2:
        message = await asyncio.wait_for(served.edge.recv(), 30)
        if isinstance(message, TokenChunk):
            texts[message.request_id] += message.text
        elif isinstance(message, StreamEnd):
            ends[message.request_id] = message
    assert ends["a"].completion_tokens == 6 and ends["b"].completion_tokens == 6
    assert texts["a"].strip() and texts["b"].strip()


async def test_cancel_stops_generation(served: Served) -> None:
    await served.edge.send(chat("long", "Write a long story about the sea.", max_tokens=900))
    first = await asyncio.wait_for(served.edge.recv(), 30)
    assert isinstance(first, TokenChunk)
    await served.edge.send(Cancel(request_id="long"))
    await eventually(
        lambda: served.session.active == 0 and served.backend.active == 0,
        what="the stream cancelled on the session and in the backend",
    )
    # The model is free again: a new request completes.
    await served.edge.send(chat("next", "Hi", max_tokens=3))
    got = await until_end(served.edge, "next")
    assert isinstance(got[-1], StreamEnd)


async def test_ping_is_answered(served: Served) -> None:
    await served.edge.send(Ping(nonce=42))
    assert await asyncio.wait_for(served.edge.recv(), 10) == Pong(nonce=42)


async def test_duplicate_request_id_is_refused(served: Served) -> None:
    await served.edge.send(chat("dup", "Tell me a story.", max_tokens=200))
    await served.edge.send(chat("dup", "Again", max_tokens=2))
    got = await until_end(served.edge, "dup")
    failed = [m for m in got if isinstance(m, StreamFailed)]
    assert failed and failed[0].code is ErrorCode.BAD_REQUEST


async def test_streams_beyond_the_per_peer_limit_are_refused_as_retryable(served: Served) -> None:
    for rid in ("s1", "s2", "s3", "s4"):
        await served.edge.send(chat(rid, "Tell me a long story.", max_tokens=300))
    got = await until_end(served.edge, "s4")
    failed = got[-1]
    assert isinstance(failed, StreamFailed)
    assert failed.code is ErrorCode.OVERLOADED and failed.retryable


async def test_context_too_long_is_reported_not_retryable(served: Served) -> None:
    await served.edge.send(chat("huge", "word " * 3000, max_tokens=5))
    got = await until_end(served.edge, "huge")
    failed = got[-1]
    assert isinstance(failed, StreamFailed)
    assert failed.code is ErrorCode.CONTEXT_TOO_LONG and not failed.retryable


async def test_a_peer_sending_a_signaling_message_is_dropped(served: Served) -> None:
    await served.edge.send(Pong(nonce=1))  # fine
    await served.edge.send(
        StreamEnd(request_id="x", finish_reason="stop", prompt_tokens=1, completion_tokens=1)
    )
    await asyncio.wait_for(served.task, 10)
    try:
        await asyncio.wait_for(served.edge.recv(), 10)
    except LinkClosed:
        return
    raise AssertionError("the link should be closed")


async def test_a_silent_edge_is_dropped() -> None:
    async with served_session(max_streams=2, peer_timeout_s=1.0) as served:
        await asyncio.wait_for(served.task, 10)  # nothing sent: the session ends by itself
        try:
            await asyncio.wait_for(served.edge.recv(), 10)
        except LinkClosed:
            return
        raise AssertionError("the worker should have closed the link")
