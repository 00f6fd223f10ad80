"""A request left to the router's second look, served end to end.

Real parts: the bundled model in a real runner (its prefill hands the look the prompt
state), the bundled weights and token head for the first look, a real worker behind
real signaling and WebRTC on loopback for the cloud. The prompt heads are set by hand
(zero weights, a chosen bias) so that each test knows which way the look must go: what
is tested is that the plan, the engines, the headers' report and the metrics carry the
look out, not how good the shipped head is (``python -m router_lab.second``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.router import Reason, Route, Router
from edge_agent.router.second import PromptHead
from edge_agent.serving import ServingPipeline
from edge_agent.serving.report import ServingReport
from edge_agent.settings import EdgeSettings
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, StreamEnd, TokenChunk
from tests.support.edge import edge_pool, linked_worker, local_engine

pytestmark = pytest.mark.asyncio(loop_scope="function")

REQUEST = GenerateRequest(
    request_id="look",
    messages=(ChatMessage(role="user", content="Name a fruit that is yellow."),),
    params=SamplingParams(max_tokens=12, temperature=0),
)


def _head(bias: float) -> PromptHead:
    """Every prompt takes the look (``sure`` 1); the bias alone decides it."""
    return PromptHead("0" * 64, np.zeros(576), bias, sure=1.0, threshold=0.5)


@dataclass
class Side:
    pipeline: ServingPipeline
    local: LocalEngine
    metrics: EdgeMetrics

    def decisions(self, route: Route, reason: Reason) -> float:
        labels = {"route": route.value, "reason": reason.value}
        value = self.metrics.registry.get_sample_value("tandem_edge_route_decisions_total", labels)
        return value or 0.0

    def looks(self, route: Route) -> float:
        labels = {"route": route.value}
        name = "tandem_edge_second_look_seconds_count"
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def edge_with_a_worker(bias: float) -> AsyncIterator[Side]:
    async with (
        edge_pool() as side,
        local_engine(n_ctx=1024) as local,
        linked_worker(side.pool, side.url, "worker-a", n_ctx=1024),
    ):
        metrics = EdgeMetrics()
        pipeline = ServingPipeline.from_settings(
            EdgeSettings(n_ctx=1024),
            local=local,
            cloud=RemoteEngine(side.pool, model=""),
            metrics=metrics,
        )
        await pipeline.load_token_head()
        router = pipeline._router
        assert isinstance(router, Router) and router.token_head is not None
        head = _head(bias)
        assert local.read_state_from(head.tensor)  # as the pipeline does for the bundled head
        router.attach_prompt_head(head)
        yield Side(pipeline, local, metrics)


async def _serve(side: Side) -> tuple[str, StreamEnd, ServingReport]:
    report = ServingReport()
    text = ""
    end = None
    async with side.pipeline.serve(REQUEST, "auto", report) as served:
        async for event in served:
            if isinstance(event, TokenChunk):
                text += event.text
            elif isinstance(event, StreamEnd):
                end = event
    assert end is not None
    return text, end, report


async def test_a_look_that_escalates_sends_the_request_to_the_cloud_before_any_local_token() -> (
    None
):
    async with edge_with_a_worker(bias=30.0) as side:
        generated = side.local.generated_tokens
        text, end, report = await _serve(side)
        assert text and end.completion_tokens > 0
        assert report.served_by is Route.CLOUD and report.route is Route.CLOUD
        assert report.reason is Reason.SECOND_LOOK and report.failovers == []
        assert side.local.generated_tokens == generated  # the prefill only, no token
        assert side.decisions(Route.CLOUD, Reason.SECOND_LOOK) == 1
        assert side.decisions(Route.LOCAL, Reason.SIMPLE) == 0  # counted once, as settled
        assert side.looks(Route.CLOUD) == 1 and side.looks(Route.LOCAL) == 0


async def test_a_look_that_keeps_the_request_answers_it_here() -> None:
    async with edge_with_a_worker(bias=-30.0) as side:
        generated = side.local.generated_tokens
        text, end, report = await _serve(side)
        assert text and end.completion_tokens > 0
        assert report.served_by is Route.LOCAL and report.reason is Reason.SIMPLE
        assert side.local.generated_tokens == generated + end.completion_tokens
        assert side.decisions(Route.LOCAL, Reason.SIMPLE) == 1
        assert side.decisions(Route.CLOUD, Reason.SECOND_LOOK) == 0
        assert side.looks(Route.LOCAL) == 1 and side.looks(Route.CLOUD) == 0
