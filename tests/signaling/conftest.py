"""Fixtures: a real signaling app on a loopback port, a fake clock, token-holding peers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.messages import Role, Welcome
from signaling.app import create_app
from signaling.registry.memory import MemoryRegistry
from signaling.settings import SignalingSettings
from tests.signaling.support import SECRET, FakeClock, Peer, token_for
from tests.support.redis import redis_server

AppClient = TestClient[web.Request, web.Application]
Connect = Callable[[Role, str], Awaitable[Peer]]

__all__ = ["redis_server"]  # the session-wide real Redis, for tests/signaling/test_cluster.py


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> SignalingSettings:
    return SignalingSettings(secret=SecretStr(SECRET), offer_timeout_s=30.0)


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
async def client(
    settings: SignalingSettings, registry: MemoryRegistry, clock: FakeClock
) -> AsyncIterator[AppClient]:
    app = create_app(settings, registry=registry, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


@pytest.fixture
def connect(client: AppClient, clock: FakeClock) -> Connect:
    """Open an authenticated peer on the app and consume its Welcome."""

    async def _connect(role: Role, peer_id: str) -> Peer:
        headers = {"Authorization": f"Bearer {token_for(role, peer_id, now=clock())}"}
        peer = Peer(await client.ws_connect("/v1/signal", headers=headers))
        assert isinstance(await peer.recv(), Welcome)
        return peer

    return _connect
