"""Resume secrets: the peer's own process takes its id over at once; nobody else can.

Each test's holder connection is *alive* unless it says otherwise (a task reads it, so
its client answers pings) and the takeover probe is long: a newcomer admitted while
such a holder is connected can only have been admitted by its resume secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.close_codes import CloseCode
from shared.codec import decode
from shared.messages import (
    RESUME_HEADER,
    ErrorCode,
    Offer,
    Register,
    RelayOpen,
    Role,
    SignalError,
    Welcome,
)
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.signaling.support import SECRET, FakeClock, Peer, token_for
from tests.support.wait import eventually

AppClient = TestClient[web.Request, web.Application]


@pytest.fixture
async def app_client(clock: FakeClock) -> AsyncIterator[AppClient]:
    settings = SignalingSettings(secret=SecretStr(SECRET), takeover_probe_s=60)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        yield client


async def open_peer(
    client: AppClient,
    clock: FakeClock,
    peer_id: str = "pi-1",
    *,
    resume: str | None = None,
    autoping: bool = True,
) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {token_for(Role.EDGE, peer_id, now=clock())}"}
    if resume is not None:
        headers[RESUME_HEADER] = resume
    return await client.ws_connect("/v1/signal", headers=headers, autoping=autoping)


async def welcomed(ws: aiohttp.ClientWebSocketResponse) -> Welcome:
    """The connection's Welcome (the first frame, however long its admission took)."""
    frame = await ws.receive(timeout=30)
    assert frame.type is aiohttp.WSMsgType.BINARY, frame
    welcome = decode(frame.data)
    assert isinstance(welcome, Welcome) and welcome.resume
    return welcome


async def edges(client: AppClient) -> int:
    return int((await (await client.get("/healthz")).json())["edges"])


async def still_served(
    ws: aiohttp.ClientWebSocketResponse, reading: asyncio.Task[aiohttp.WSMessage] | None = None
) -> None:
    """``ws`` is the current connection of its id: signaling answers what it sends
    (``reading``: the task already reading it, which gets the answer)."""
    await Peer(ws).send(Offer(session_id="probe-of-service", sdp="x", model="nobody"))
    frame = await (reading if reading is not None else ws.receive(timeout=30))
    assert frame.type is aiohttp.WSMsgType.BINARY, frame
    reply = decode(frame.data)
    assert isinstance(reply, SignalError) and reply.code is ErrorCode.NO_WORKER


def reading(ws: aiohttp.ClientWebSocketResponse) -> asyncio.Task[aiohttp.WSMessage]:
    """Read ``ws`` in the background: its client answers signaling's pings meanwhile."""
    return asyncio.create_task(ws.receive(timeout=120))


async def test_the_same_process_takes_its_id_over_at_once(
    app_client: AppClient, clock: FakeClock
) -> None:
    old_ws = await open_peer(app_client, clock)
    old = await welcomed(old_ws)
    holder = Peer(old_ws)
    closed = asyncio.create_task(holder.closed_with())  # reading: it answers pings

    new_ws = await open_peer(app_client, clock, resume=old.resume)
    new = await welcomed(new_ws)
    assert new.resume != old.resume  # a fresh secret for the new connection
    assert await closed == CloseCode.RESUMED
    assert "resumed" in holder.close_reason
    await still_served(new_ws)
    assert await edges(app_client) == 1


@pytest.mark.parametrize("presented", [None, "", "not-the-secret", "x" * 4096])
async def test_without_the_holders_secret_a_live_holder_keeps_its_id(
    app_client: AppClient, clock: FakeClock, presented: str | None
) -> None:
    holder_ws = await open_peer(app_client, clock)
    await welcomed(holder_ws)
    holder_reading = reading(holder_ws)

    newcomer = Peer(await open_peer(app_client, clock, resume=presented))
    assert await newcomer.closed_with() == CloseCode.PEER_ID_IN_USE
    await still_served(holder_ws, holder_reading)


async def test_another_devices_old_secret_does_not_take_a_live_id(
    app_client: AppClient, clock: FakeClock
) -> None:
    """Two devices share one token: B's secret, from its own earlier connection, is not
    A's; while A is alive, B is refused as before."""
    b_ws = await open_peer(app_client, clock)
    b_secret = (await welcomed(b_ws)).resume
    await b_ws.close()
    await eventually(lambda: _no_edges(app_client), what="B's first connection gone")
    a_ws = await open_peer(app_client, clock)
    await welcomed(a_ws)
    a_reading = reading(a_ws)

    b_again = Peer(await open_peer(app_client, clock, resume=b_secret))
    assert await b_again.closed_with() == CloseCode.PEER_ID_IN_USE
    await still_served(a_ws, a_reading)


async def _no_edges(client: AppClient) -> bool:
    return await edges(client) == 0


async def test_a_wrong_secret_falls_back_to_the_probe(clock: FakeClock) -> None:
    """A silent holder (it answers no ping, as a dead socket would not) is still replaced
    after the probe, as a plain newcomer would replace it: closed normally, not resumed."""
    settings = SignalingSettings(secret=SecretStr(SECRET), takeover_probe_s=0.2)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        silent_ws = await open_peer(client, clock, autoping=False)
        await welcomed(silent_ws)
        new_ws = await open_peer(client, clock, resume="not-the-secret")
        await welcomed(new_ws)
        assert await Peer(silent_ws).closed_with() == CloseCode.NORMAL
        await still_served(new_ws)


async def test_a_secret_is_neither_logged_nor_shown(
    app_client: AppClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old_ws = await open_peer(app_client, clock)
    old = await welcomed(old_ws)
    closed = asyncio.create_task(Peer(old_ws).closed_with())
    new = await welcomed(await open_peer(app_client, clock, resume=old.resume))
    assert await closed == CloseCode.RESUMED
    assert "resumed on a new connection" in caplog.text  # the takeover itself is logged
    for secret in (old.resume, new.resume):
        assert secret is not None
        assert secret not in caplog.text
        assert secret not in repr(old) + repr(new) + str(old) + str(new)


# ---------------------------------------------------------------- relay limits are honoured


@pytest.mark.parametrize("limit", [0, 1])
async def test_the_relay_limit_per_edge_is_the_configured_one(clock: FakeClock, limit: int) -> None:
    """``--relay-max-sessions-per-edge`` reaches the broker: 0 refuses every relayed
    session (with a reason naming the setting) and the worker never hears of it."""
    settings = SignalingSettings(secret=SecretStr(SECRET), relay_max_sessions_per_edge=limit)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        worker_ws = await client.ws_connect(
            "/v1/signal",
            headers={"Authorization": f"Bearer {token_for(Role.WORKER, 'w1', now=clock())}"},
        )
        worker = Peer(worker_ws)
        assert isinstance(await worker.recv(), Welcome)
        await worker.send(Register(models=("m",), capacity=8))
        edge_ws = await open_peer(client, clock)
        await welcomed(edge_ws)
        edge = Peer(edge_ws)

        for n in range(limit):  # up to the limit, the worker is asked
            await edge.send(RelayOpen(session_id=f"r{n}", model="m", key=b"k" * 32))
            opened = await worker.recv()
            assert isinstance(opened, RelayOpen) and opened.session_id == f"r{n}"
        await edge.send(RelayOpen(session_id="over", model="m", key=b"k" * 32))
        refused = await edge.recv()
        assert isinstance(refused, SignalError) and refused.session_id == "over"
        assert refused.code is ErrorCode.OVERLOADED
        assert "--relay-max-sessions-per-edge" in refused.message
        if limit == 0:
            assert "off" in refused.message
        # The worker heard nothing of the refused one: the next thing it gets is this.
        await edge.send(Offer(session_id="after", sdp="x", model="m"))
        following = await worker.recv()
        assert isinstance(following, Offer) and following.session_id == "after"
