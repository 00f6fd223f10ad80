"""A worker ``EdgeSession`` with the real model, served over a real loopback data channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cloud_worker.backends.llama import LlamaBackend
from cloud_worker.edge_session import EdgeSession
from inference import RunnerConfig
from link import DataChannelLink
from tests.support.model import model_path
from tests.support.rtc import open_pair


@dataclass
class Served:
    """The edge's end of the link, and the worker side serving it."""

    edge: DataChannelLink
    session: EdgeSession
    backend: LlamaBackend
    task: asyncio.Task[None]


@asynccontextmanager
async def served_session(*, max_streams: int, peer_timeout_s: float = 120) -> AsyncIterator[Served]:
    backend = LlamaBackend(
        RunnerConfig(model_path=model_path(), n_ctx=1024), parallel=1, max_queue=4
    )
    await backend.load()
    edge, worker = await open_pair()
    # These tests drive the raw link and send no heartbeats: only a long silence counts.
    session = EdgeSession(
        worker, backend, peer_id="edge-test", max_streams=max_streams, peer_timeout_s=peer_timeout_s
    )
    task = asyncio.get_running_loop().create_task(session.run())
    try:
        yield Served(edge, session, backend, task)
    finally:
        await edge.aclose()
        await asyncio.wait_for(task, 10)
        await backend.aclose()
