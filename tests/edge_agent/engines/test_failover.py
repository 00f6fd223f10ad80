"""``FailoverEngine``: a worker that goes away mid-stream costs the client nothing.

Real signaling and worker apps in this loop, real WebRTC on loopback, the real model on
every side, greedy sampling. The client's stream must be the text delivered before the
failure, then a continuation of it (not a restart), with usage counting every token.
Exact text equality with an uninterrupted run is not a fair test: llama.cpp evaluates
the resumed text as one batch, and its prefix cache changes how prompts are batched,
either of which can flip a near-tie between two tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import pytest

from edge_agent.engines.base import Failover
from edge_agent.engines.failover import FailoverEngine
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.errors import NoPeerAvailable
from edge_agent.peers import PeerPool
from edge_agent.router import Route
from shared.messages import (
    ChatMessage,
    GenerateRequest,
    SamplingParams,
    StreamEnd,
    TokenChunk,
)
from tests.support.apps import serving
from tests.support.edge import edge_pool, linked_worker, local_engine, wait_for_workers, worker_app

REQUEST = GenerateRequest(
    request_id="story",
    messages=(ChatMessage(role="user", content="Tell me a short story about a fox and a crow."),),
    params=SamplingParams(max_tokens=60, temperature=0),
)


@dataclass
class Edge:
    url: str
    pool: PeerPool
    local: LocalEngine

    def engine(
        self, *, fallback: Route | None = None, wait_s: float = 3, max_failovers: int = 2
    ) -> FailoverEngine:
        """One request's failover engine, as the serving pipeline builds it."""
        return FailoverEngine(
            RemoteEngine(self.pool, model=""),
            self.local,
            max_failovers=max_failovers,
            wait_s=wait_s,
            fallback=fallback,
        )


@asynccontextmanager
async def edge_beside_signaling() -> AsyncIterator[Edge]:
    """An edge pool beside signaling, and a real local engine."""
    async with edge_pool() as side, local_engine(n_ctx=1024) as local:
        yield Edge(side.url, side.pool, local)


def assert_seamless(run: Run) -> None:
    assert run.before_failure and run.text.startswith(run.before_failure)
    rest = run.text[len(run.before_failure) :]
    assert rest.strip(), "the stream must go on after the failure"
    assert not rest.lstrip().startswith(run.before_failure.strip()), "it restarted: text repeated"
    assert run.end.completion_tokens == 60 and run.end.finish_reason == "length"


@dataclass
class Run:
    text: str
    end: StreamEnd
    before_failure: str
    failovers: list[Failover]


async def interrupted_run(edge: Edge, stop_worker: AsyncExitStack) -> Run:
    """Stream REQUEST; after three chunks, shut the serving worker down (no grace)."""
    text = ""
    chunks = 0
    before = ""
    end = None
    failovers: list[Failover] = []
    async for event in edge.engine().stream(REQUEST):
        if isinstance(event, TokenChunk):
            text += event.text
            chunks += 1
            if chunks == 3:
                before = text
                await stop_worker.aclose()  # worker-a drains with no grace: streams handed back
        elif isinstance(event, Failover):
            failovers.append(event)
        elif isinstance(event, StreamEnd):
            end = event
    assert end is not None
    return Run(text, end, before, failovers)


async def run_interrupted_on_worker_a(edge: Edge, *, standby: str | None = None) -> Run:
    """Serve REQUEST from worker-a, which shuts down (no grace) after three chunks.

    ``standby`` names a second worker started once the edge is linked to worker-a (so
    that the edge cannot pick it first) and registered before the stream begins."""
    async with AsyncExitStack() as stack:
        worker_a = AsyncExitStack()
        await worker_a.enter_async_context(
            linked_worker(edge.pool, edge.url, "worker-a", drain_grace_s=0, n_ctx=1024)
        )
        stack.push_async_callback(worker_a.aclose)
        if standby is not None:
            await stack.enter_async_context(serving(worker_app(edge.url, standby, n_ctx=1024)))
            await wait_for_workers(edge.url, 2)
        return await interrupted_run(edge, worker_a)


async def test_the_stream_moves_to_another_worker_without_a_seam() -> None:
    async with edge_beside_signaling() as edge:
        run = await run_interrupted_on_worker_a(edge, standby="worker-b")
    assert_seamless(run)
    [failover] = run.failovers
    assert failover.to is Route.CLOUD and failover.after_tokens > 0
    assert failover.cause == "NoPeerAvailable"  # the drained worker handed the stream back


async def test_with_no_worker_left_the_local_model_finishes_the_stream() -> None:
    async with edge_beside_signaling() as edge:
        run = await run_interrupted_on_worker_a(edge)
    assert_seamless(run)
    [failover] = run.failovers
    assert failover.to is Route.LOCAL and failover.after_tokens > 0


async def test_a_request_that_never_started_goes_nowhere_without_a_fallback() -> None:
    # A forced cloud request: no worker, no local answer; the client gets the error (503).
    async with edge_beside_signaling() as edge:
        events = []
        with pytest.raises(NoPeerAvailable, match=r"within 0\.2 s"):
            async for event in edge.engine(fallback=None, wait_s=0.2).stream(REQUEST):
                events.append(event)
        assert events == []


async def test_a_request_that_never_started_falls_back_where_its_plan_says() -> None:
    # An auto request: the local model answers, and the stream says so before any token.
    async with edge_beside_signaling() as edge:
        events = [e async for e in edge.engine(fallback=Route.LOCAL, wait_s=0.2).stream(REQUEST)]
    assert events[0] == Failover(Route.LOCAL, 0, "NoPeerAvailable")
    assert isinstance(events[-1], StreamEnd) and events[-1].completion_tokens == 60
    assert not [e for e in events[1:] if isinstance(e, Failover)]
