"""An instance that dies without a word (SIGKILL) stops holding its peers: its presence
and its workers expire from the shared Redis, and they may register elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from devstack.stack import free_port
from shared.codec import decode
from shared.messages import ErrorCode, Offer, Register, Role, SignalError, Welcome
from signaling.app import create_app
from signaling.registry.redis import RedisRegistry
from signaling.settings import SignalingSettings
from tests.signaling.support import SECRET, Peer, token_for
from tests.support.redis import RedisServer, unique_prefix
from tests.support.wait import eventually, wait_until

TTL_S = "1"


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def instance_a(
    redis_server: RedisServer, prefix: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    args = ["--port", str(port), "--redis-url", redis_server.url, "--redis-prefix", prefix]
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling", "serve", *args, "--redis-presence-ttl-s", TTL_S],
        env={**os.environ, "TANDEM_SECRET": SECRET},
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _healthy(port) or proc.poll() is not None, what="instance A up")
        assert proc.poll() is None
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
async def instance_b(
    redis_server: RedisServer, prefix: str
) -> AsyncIterator[TestClient[aiohttp.web.Request, aiohttp.web.Application]]:
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        redis_url=redis_server.url,
        redis_prefix=prefix,
        redis_presence_ttl_s=float(TTL_S),
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0)) as client:
        yield client


async def _connect(http: aiohttp.ClientSession, url: str, role: Role, peer_id: str) -> Peer:
    headers = {"Authorization": f"Bearer {token_for(role, peer_id, now=time.time())}"}
    peer = Peer(await http.ws_connect(f"{url.replace('http', 'ws')}/v1/signal", headers=headers))
    assert isinstance(await _welcome(peer), Welcome)
    return peer


async def test_a_dead_instances_peers_expire_and_register_elsewhere(
    redis_server: RedisServer,
    prefix: str,
    instance_a: tuple[str, subprocess.Popen[bytes]],
    instance_b: TestClient[aiohttp.web.Request, aiohttp.web.Application],
) -> None:
    url_a, proc_a = instance_a
    url_b = str(instance_b.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http, aioredis.from_url(redis_server.url) as client:
        registry = RedisRegistry(client, prefix=prefix, instance_id="reader", ttl_ms=1000)
        worker = await _connect(http, url_a, Role.WORKER, "w1")
        await worker.send(Register(models=("m",), capacity=1))
        await eventually(registry.workers, what="w1 registered through A")
        edge = await _connect(http, url_b, Role.EDGE, "e1")
        await edge.send(Offer(session_id="s1", sdp="x", model="m"))
        assert isinstance(await worker.recv(), Offer)  # B reached the worker on A

        proc_a.kill()
        proc_a.wait()
        presence = f"{prefix}:peer:worker:w1"
        await eventually(
            lambda: _gone(client, presence),
            what="A's presence of w1 expired",
        )
        await eventually(lambda: _none(registry), what="w1 gone from the shared registry")
        # B noticed on its own that the worker its edge's offer waits on is gone.
        failed = decode((await edge.ws.receive(timeout=30)).data)
        assert isinstance(failed, SignalError) and failed.session_id == "s1"
        assert failed.code is ErrorCode.NO_WORKER

        worker_again = await _connect(http, url_b, Role.WORKER, "w1")
        await worker_again.send(Register(models=("m",), capacity=1))
        await eventually(registry.workers, what="w1 registered through B")
        await edge.send(Offer(session_id="s2", sdp="y", model="m"))
        offer = await worker_again.recv()
        assert isinstance(offer, Offer) and offer.session_id == "s2"


async def _gone(client: aioredis.Redis, key: str) -> bool:
    return int(await client.exists(key)) == 0


async def _none(registry: RedisRegistry) -> bool:
    return not await registry.workers()


async def _welcome(peer: Peer) -> object:
    """The first frame, however long a takeover probe before it took (a loaded machine)."""
    frame = await peer.ws.receive(timeout=30)
    return decode(frame.data)
