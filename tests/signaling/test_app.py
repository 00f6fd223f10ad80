"""The app as a whole: health, metrics, lifecycle."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from shared.messages import Offer, Register, Role, SignalError, Welcome
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.signaling.conftest import AppClient, Connect
from tests.signaling.support import SECRET, FakeClock, Peer, token_for
from tests.support.wait import eventually


async def test_create_app_requires_secret() -> None:
    with pytest.raises(ValueError, match="TANDEM_SECRET"):
        create_app(SignalingSettings())


async def test_healthz_counts_connected_peers(client: AppClient, connect: Connect) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "workers": 0, "edges": 0}

    await connect(Role.WORKER, "gpu-1")
    first_edge = await connect(Role.EDGE, "pi-1")
    await connect(Role.EDGE, "pi-2")
    assert await (await client.get("/healthz")).json() == {"status": "ok", "workers": 1, "edges": 2}

    await first_edge.ws.close()

    async def one_edge_left() -> bool:  # the server notices the close on its own task
        return bool((await (await client.get("/healthz")).json())["edges"] == 1)

    await eventually(one_edge_left, what="the closed edge forgotten")
    assert await (await client.get("/healthz")).json() == {"status": "ok", "workers": 1, "edges": 1}


async def test_metrics_count_connections_auth_failures_and_offers(
    client: AppClient, connect: Connect
) -> None:
    await client.get("/v1/signal")  # no token
    await client.get("/v1/signal", headers={"Authorization": "Bearer forged"})
    worker = await connect(Role.WORKER, "gpu-1")
    await worker.send(Register(models=("m",), capacity=2))
    edge = await connect(Role.EDGE, "pi-1")
    await edge.send(Offer(session_id="s1", sdp="v=0", model="m"))
    assert isinstance(await worker.recv(), Offer)
    await edge.send(Offer(session_id="s2", sdp="v=0", model="other"))
    assert isinstance(await edge.recv(), SignalError)

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = set((await response.text()).splitlines())
    assert {
        'tandem_signaling_connections_total{role="worker"} 1.0',
        'tandem_signaling_connections_total{role="edge"} 1.0',
        'tandem_signaling_auth_failures_total{reason="missing_token"} 1.0',
        'tandem_signaling_auth_failures_total{reason="token_invalid"} 1.0',
        'tandem_signaling_auth_failures_total{reason="token_expired"} 0.0',
        'tandem_signaling_offers_total{result="matched"} 1.0',
        'tandem_signaling_offers_total{result="no_worker"} 1.0',
        'tandem_signaling_peers{role="worker"} 1.0',
        'tandem_signaling_peers{role="edge"} 1.0',
    } <= lines


async def test_each_app_has_its_own_metrics(client: AppClient, connect: Connect) -> None:
    await connect(Role.EDGE, "pi-1")
    other = create_app(SignalingSettings(secret=SecretStr(SECRET)))
    async with (
        TestServer(other, host="127.0.0.1", port=0) as server,
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/metrics")) as response,
    ):
        text = await response.text()
    assert 'tandem_signaling_connections_total{role="edge"} 0.0' in text.splitlines()


async def test_shutdown_closes_websockets_going_away(clock: FakeClock) -> None:
    app = create_app(SignalingSettings(secret=SecretStr(SECRET)), clock=clock)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    headers = {"Authorization": f"Bearer {token_for(Role.WORKER, 'gpu-1', now=clock())}"}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/v1/signal"), headers=headers)
        peer = Peer(ws)
        assert isinstance(await peer.recv(), Welcome)
        closed = asyncio.create_task(peer.closed_with())
        await server.close()
        # Closed by the broker on shutdown (its reason), not by aiohttp's shutdown timeout.
        assert await closed == 1001
        assert peer.close_reason == "server shutting down"
