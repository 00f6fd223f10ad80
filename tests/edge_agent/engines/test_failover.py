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

import aiohttp
import pytest

from edge_agent.engines.base import ON_FAILOVER
from edge_agent.engines.failover import FailoverEngine
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.errors import NoPeerAvailable
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool
from inference import LlamaRunner, RunnerConfig
from shared.messages import (
    ChatMessage,
    GenerateRequest,
    SamplingParams,
    StreamEnd,
    TokenChunk,
)
from tests.support.apps import serving
from tests.support.edge import edge_pool, wait_for_worker, worker_app
from tests.support.model import model_path
from tests.support.wait import eventually

REQUEST = GenerateRequest(
    request_id="story",
    messages=(ChatMessage(role="user", content="Tell me a short story about a fox and a crow."),),
    params=SamplingParams(max_tokens=60, temperature=0),
)


@dataclass
class Edge:
    url: str
    pool: PeerPool
    engine: FailoverEngine
    local: LocalEngine
    metrics: EdgeMetrics


@asynccontextmanager
async def edge_beside_signaling(
    *, connect_timeout_s: float = 10, failover_wait_s: float = 3
) -> AsyncIterator[Edge]:
    """An edge pool beside signaling, a real local engine, and the failover engine."""
    async with edge_pool() as side:
        local = LocalEngine(LlamaRunner(RunnerConfig(model_path=model_path(), n_ctx=1024)))
        await local.load()
        engine = FailoverEngine(
            RemoteEngine(side.pool, model="", connect_timeout_s=connect_timeout_s),
            local,
            side.metrics,
            max_failovers=2,
            failover_wait_s=failover_wait_s,
        )
        try:
            yield Edge(side.url, side.pool, engine, local, side.metrics)
        finally:
            await local.aclose()


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


async def interrupted_run(edge: Edge, stop_worker: AsyncExitStack) -> Run:
    """Stream REQUEST; after three chunks, shut the serving worker down (no grace)."""
    text = ""
    chunks = 0
    before = ""
    end = None
    async for event in edge.engine.stream(REQUEST):
        if isinstance(event, TokenChunk):
            text += event.text
            chunks += 1
            if chunks == 3:
                before = text
                await stop_worker.aclose()  # worker-a drains with no grace: streams handed back
        else:
            end = event
    assert end is not None
    return Run(text, end, before)


async def run_interrupted_on_worker_a(edge: Edge, *, standby: str | None = None) -> Run:
    """Serve REQUEST from worker-a, which shuts down (no grace) after three chunks.

    ``standby`` names a second worker started once the edge is linked to worker-a (so
    that the edge cannot pick it first) and registered before the stream begins."""
    async with AsyncExitStack() as stack:
        worker_a = AsyncExitStack()
        await worker_a.enter_async_context(
            serving(worker_app(edge.url, "worker-a", drain_grace_s=0, n_ctx=1024))
        )
        stack.push_async_callback(worker_a.aclose)
        await wait_for_worker(edge.pool, "worker-a")
        if standby is not None:
            await stack.enter_async_context(serving(worker_app(edge.url, standby, n_ctx=1024)))
            await wait_for_workers(edge.url, 2)
        return await interrupted_run(edge, worker_a)


async def wait_for_workers(signaling_url: str, n: int, timeout_s: float = 30) -> None:
    """Until signaling has ``n`` workers registered."""
    health = signaling_url.replace("ws://", "http://").replace("/v1/signal", "/healthz")
    async with aiohttp.ClientSession() as http:

        async def registered() -> bool:
            async with http.get(health) as resp:
                return bool((await resp.json())["workers"] >= n)

        await eventually(registered, timeout_s=timeout_s, what=f"{n} workers registered")


async def test_the_stream_moves_to_another_worker_without_a_seam() -> None:
    told: list[str] = []
    ON_FAILOVER.set(lambda to, _: told.append(to))  # the HTTP layer's X-Tandem-Failovers
    async with edge_beside_signaling() as edge:
        run = await run_interrupted_on_worker_a(edge, standby="worker-b")
        assert_seamless(run)
        assert 'tandem_edge_failovers_total{to="cloud"} 1.0' in edge.metrics.render().decode()
    assert told == ["cloud"]


async def test_with_no_worker_left_the_local_model_finishes_the_stream() -> None:
    told: list[str] = []
    ON_FAILOVER.set(lambda to, _: told.append(to))
    async with edge_beside_signaling() as edge:
        run = await run_interrupted_on_worker_a(edge)
        assert_seamless(run)
        assert 'tandem_edge_failovers_total{to="local"} 1.0' in edge.metrics.render().decode()
    assert told == ["local"]


async def test_a_stream_that_never_started_is_not_silently_served_locally() -> None:
    # With no worker at all, the engine must say so: the dispatcher then answers locally
    # for auto requests (saying so in its headers), or 503 for forced cloud ones.
    async with edge_beside_signaling(connect_timeout_s=0.5, failover_wait_s=0.5) as edge:
        with pytest.raises(NoPeerAvailable):
            async for _ in edge.engine.stream(REQUEST):
                pass
        assert "tandem_edge_failovers_total{" not in edge.metrics.render().decode()
