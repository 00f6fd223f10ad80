"""The transport benchmarks' setup: signaling in this event loop, a fast worker
(``bench/fast_worker.py``) as a real process, and an edge's peer pool here, on loopback.

The edge side runs in the benchmark's own process so that it can time the pool and its
streams directly (the HTTP layer is ``bench.edge_overhead``'s subject, not this one).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bench.common import Proc, spawn, wait_http
from devstack.stack import free_port
from edge_agent.engines.remote import RemoteEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.peers import PeerPool, PoolConfig
from link import IcePolicy, SignalingClient
from shared.messages import GenerateRequest, Role, SamplingParams, StreamEnd, TokenChunk
from shared.tokens import mint_token
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings

LOOPBACK = IcePolicy(host_addresses=("127.0.0.1",))


@dataclass
class Transport:
    signaling_url: str
    secret: str
    worker: Proc

    def token(self, role: Role, peer_id: str) -> str:
        return mint_token(self.secret, role=role, peer_id=peer_id, ttl_s=3600, now=time.time())


@asynccontextmanager
async def transport(
    capacity: int = 64, *, tree: Path | None = None, name: str = "fast-1"
) -> AsyncIterator[Transport]:
    """Signaling here, the fast worker registered with it; ``tree``: run the worker from
    that checkout (a before/after in the same run)."""
    secret = secrets.token_urlsafe(32)
    runner = web.AppRunner(create_signaling(SignalingSettings(secret=SecretStr(secret))))
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    url = f"ws://127.0.0.1:{port}/v1/signal"
    with tempfile.TemporaryDirectory() as logs:
        wport = free_port()
        token = mint_token(secret, role=Role.WORKER, peer_id=name, ttl_s=3600, now=time.time())
        env = {"TANDEM_TOKEN": token}
        if tree is not None:
            env["PYTHONPATH"] = str(tree)  # absolute: the caller resolves it
        argv = [
            sys.executable, "-m", "bench.fast_worker", "--signaling", url,
            "--port", str(wport), "--capacity", str(capacity),
        ]  # fmt: skip
        worker = spawn(name, argv, Path(logs), wport, env=env, cwd=tree)
        try:
            wait_http(worker, f"{worker.url}/healthz", lambda b: True, 60)
            yield Transport(url, secret, worker)
        finally:
            worker.stop()
            await runner.cleanup()


@asynccontextmanager
async def edge_pool(
    t: Transport, *, warm_standby: bool = False, relay_first: bool = True
) -> AsyncIterator[PeerPool]:
    """An edge's pool linked (or linking) to the fast worker; closed on exit.
    ``relay_first`` as the edge's own default: the first link is the relay through
    signaling, WebRTC comes up beside it."""
    signaling = SignalingClient(t.signaling_url, t.token(Role.EDGE, f"edge-{uuid.uuid4().hex[:8]}"))
    config = PoolConfig(
        policy=LOOPBACK,
        reconnect_min_s=0.1,
        warm_standby=warm_standby,
        relay_first=relay_first,
    )
    pool = PeerPool(signaling, EdgeMetrics(), config)
    signaling.start()
    pool.start()
    try:
        yield pool
    finally:
        await pool.aclose()
        await signaling.aclose()


def request(max_tokens: int) -> GenerateRequest:
    return GenerateRequest(
        request_id=uuid.uuid4().hex,
        prompt="x",
        params=SamplingParams(max_tokens=max_tokens, temperature=0),
    )


async def one_stream(engine: RemoteEngine, max_tokens: int) -> tuple[float, int]:
    """(seconds to the first token, tokens received) for one stream through ``engine``."""
    start = time.perf_counter()
    first = None
    tokens = 0
    async for event in engine.stream(request(max_tokens)):
        if isinstance(event, TokenChunk) and event.n_tokens:
            if first is None:
                first = time.perf_counter() - start
            tokens += event.n_tokens
        elif isinstance(event, StreamEnd):
            break
    return (first if first is not None else time.perf_counter() - start), tokens


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` until true (setup only: never inside a timed section)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.005)
