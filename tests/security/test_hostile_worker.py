"""Issue 13, item 9: a worker must not flood the edge.

A hostile worker (``hostile_worker.py``: a valid worker token, real signaling, a real
aiortc link) answers the real edge app's requests with frames the protocol forbids.
Before the fix the edge passed each one on: more tokens than ``max_tokens``, 200 KB of
text for one token, usage the chunks never carried (charged to the day's cloud budget),
an endless stream held in full for a non-streamed answer. Now each breaks the protocol
(the edge drops that worker's link, logs it, and the stream fails over to the local
model), or, for an endless stream, ends at ``--max-stream-tokens``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from edge_agent.peers import StreamBounds
from link import Link
from shared.messages import GenerateRequest, StreamEnd, TokenChunk
from tests.edge_agent.api.harness import loaded_engine, running_agent
from tests.security.hostile_worker import Script, hostile_cloud
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MAX_TOKENS = 8


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[LocalEngine]:
    async with loaded_engine() as engine:
        yield engine


def hello(request: GenerateRequest) -> TokenChunk:
    return TokenChunk(request_id=request.request_id, text="Hello", n_tokens=1)


async def too_many_tokens(link: Link, request: GenerateRequest) -> None:
    await link.send(hello(request))
    await link.send(TokenChunk(request_id=request.request_id, text=" x" * 50, n_tokens=50))
    end = StreamEnd(
        request_id=request.request_id, finish_reason="stop", prompt_tokens=5, completion_tokens=51
    )
    await link.send(end)


async def too_much_text(link: Link, request: GenerateRequest) -> None:
    await link.send(hello(request))
    await link.send(TokenChunk(request_id=request.request_id, text="y" * 200_000, n_tokens=1))
    end = StreamEnd(
        request_id=request.request_id, finish_reason="stop", prompt_tokens=5, completion_tokens=2
    )
    await link.send(end)


async def lying_usage(link: Link, request: GenerateRequest) -> None:
    await link.send(hello(request))
    end = StreamEnd(
        request_id=request.request_id,
        finish_reason="stop",
        prompt_tokens=10**12,
        completion_tokens=1,
    )
    await link.send(end)


async def lying_completion(link: Link, request: GenerateRequest) -> None:
    await link.send(hello(request))
    end = StreamEnd(
        request_id=request.request_id,
        finish_reason="stop",
        prompt_tokens=5,
        completion_tokens=10**6,
    )
    await link.send(end)


@pytest.mark.parametrize(
    "script",
    [too_many_tokens, too_much_text, lying_usage, lying_completion],
    ids=lambda s: s.__name__,
)
async def test_a_protocol_violation_drops_the_link_and_the_stream_fails_over(
    local: LocalEngine, script: Script, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        hostile_cloud(script) as (cloud, hostile),
        running_agent(local, cloud=cloud, max_failovers=0) as agent,
        ClientSession() as http,
    ):
        body = {
            "model": "cloud",
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "Say hello."}],
        }
        async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 200, answer
            assert response.headers["X-Tandem-Failovers"] == "1"  # finished locally
        assert answer["usage"]["completion_tokens"] <= MAX_TOKENS
        assert answer["usage"]["prompt_tokens"] < 1000
        assert len(answer["choices"][0]["message"]["content"]) < 1000
        assert answer["choices"][0]["message"]["content"].startswith("Hello")
        await eventually(lambda: hostile.links[0].closed, what="the hostile link dropped")
        assert any("broke the protocol" in r.getMessage() for r in caplog.records)


async def endless(link: Link, request: GenerateRequest) -> None:
    for _ in range(1000):
        await link.send(TokenChunk(request_id=request.request_id, text="z", n_tokens=1))
    end = StreamEnd(
        request_id=request.request_id,
        finish_reason="length",
        prompt_tokens=5,
        completion_tokens=1000,
    )
    await link.send(end)
    await asyncio.Event().wait()  # keeps "generating" until cancelled


async def test_a_stream_without_max_tokens_ends_at_the_edges_cap(local: LocalEngine) -> None:
    """A request that sets no ``max_tokens``: the worker cannot know the edge's cap, so
    reaching it is no violation; the answer ends there (``length``), the worker is told
    to stop, and its link stays up for the next request."""
    bounds = StreamBounds(max_stream_tokens=64)
    async with (
        hostile_cloud(endless, bounds) as (cloud, hostile),
        running_agent(local, cloud=cloud) as agent,
        ClientSession() as http,
    ):
        body = {"model": "cloud", "messages": [{"role": "user", "content": "Go on forever."}]}
        async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 200, answer
            assert "X-Tandem-Failovers" not in response.headers
        assert answer["usage"]["completion_tokens"] == 64
        assert answer["choices"][0]["finish_reason"] == "length"
        assert answer["choices"][0]["message"]["content"] == "z" * 64
        await eventually(lambda: hostile.cancels, what="the worker told to stop")
        assert not hostile.links[0].closed
