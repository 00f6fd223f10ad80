"""Two signaling apps on one real Redis act as one: presence, matchmaking, SDP exchange
and the relay cross instances; a peer id stays held by one live connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.close_codes import CloseCode
from shared.codec import decode
from shared.messages import (
    RESUME_HEADER,
    Answer,
    ErrorCode,
    Offer,
    Register,
    RelayAccept,
    RelayClose,
    RelayData,
    RelayOpen,
    Role,
    SignalError,
    Welcome,
)
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.signaling.support import SECRET, FakeClock, Peer, token_for
from tests.support.redis import RedisServer, unique_prefix
from tests.support.wait import eventually

AppClient = TestClient[web.Request, web.Application]


class Cluster:
    def __init__(self, server: RedisServer, prefix: str, clients: list[AppClient]) -> None:
        self.server = server
        self.prefix = prefix
        self.clients = clients
        self.clock = FakeClock()

    async def connect(self, index: int, role: Role, peer_id: str) -> Peer:
        headers = {"Authorization": f"Bearer {token_for(role, peer_id, now=self.clock())}"}
        peer = Peer(await self.clients[index].ws_connect("/v1/signal", headers=headers))
        welcome = await _welcome(peer)
        assert isinstance(welcome, Welcome)
        peer.welcome = welcome
        return peer

    async def worker(self, index: int, peer_id: str, model: str = "m") -> Peer:
        worker = await self.connect(index, Role.WORKER, peer_id)
        await worker.send(Register(models=(model,), capacity=2))
        async with aioredis.from_url(self.server.url) as client:
            await eventually(
                lambda: client.exists(f"{self.prefix}:worker:{peer_id}"),
                what=f"worker {peer_id} in the shared registry",
            )
        return worker


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    prefix = unique_prefix()
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        redis_url=redis_server.url,
        redis_prefix=prefix,
        redis_presence_ttl_s=1.0,
        takeover_probe_s=1.0,
    )
    async with AsyncExitStack() as stack:
        clients: list[AppClient] = []
        made = Cluster(redis_server, prefix, clients)
        for _ in range(2):
            app = create_app(settings, clock=made.clock)
            server = TestServer(app, host="127.0.0.1", port=0)
            clients.append(await stack.enter_async_context(TestClient(server)))
        yield made


async def test_offer_and_answer_cross_instances(cluster: Cluster) -> None:
    worker = await cluster.worker(1, "w1")
    edge = await cluster.connect(0, Role.EDGE, "e1")
    await edge.send(Offer(session_id="s1", sdp="v=0 offer", model="m"))
    offer = await worker.recv()
    assert isinstance(offer, Offer) and offer.peer_id == "e1" and offer.sdp == "v=0 offer"
    await worker.send(Answer(session_id="s1", sdp="v=0 answer"))
    answer = await edge.recv()
    assert isinstance(answer, Answer) and answer.peer_id == "w1" and answer.sdp == "v=0 answer"
    # The offer was answered on the edge's instance: a second answer is refused there.
    await worker.send(Answer(session_id="s1", sdp="again"))
    refused = await worker.recv()
    assert isinstance(refused, SignalError) and refused.code is ErrorCode.BAD_REQUEST


async def test_pending_offer_limit_holds_for_remote_workers(cluster: Cluster) -> None:
    await cluster.worker(1, "w1")
    edge = await cluster.connect(0, Role.EDGE, "e1")
    for n in range(4):  # the default --max-pending-offers-per-edge
        await edge.send(Offer(session_id=f"s{n}", sdp="x", model="m"))
    await edge.send(Offer(session_id="s4", sdp="x", model="m"))
    refused = await edge.recv()
    assert isinstance(refused, SignalError) and refused.code is ErrorCode.OVERLOADED


async def test_relay_through_two_instances(cluster: Cluster) -> None:
    worker = await cluster.worker(1, "w1")
    edge = await cluster.connect(0, Role.EDGE, "e1")
    await edge.send(RelayOpen(session_id="r1", model="m", key=b"k" * 32))
    opened = await worker.recv()
    assert isinstance(opened, RelayOpen) and opened.peer_id == "e1"
    await worker.send(RelayAccept(session_id="r1", model="m", key=b"w" * 32))
    accepted = await edge.recv()
    assert isinstance(accepted, RelayAccept) and accepted.peer_id == "w1"
    for n in range(5):
        await edge.send(RelayData(session_id="r1", data=b"up%d" % n))
        await worker.send(RelayData(session_id="r1", data=b"down%d" % n))
    ups = [await worker.recv() for _ in range(5)]
    downs = [await edge.recv() for _ in range(5)]
    assert [m.data for m in ups if isinstance(m, RelayData)] == [b"up%d" % n for n in range(5)]
    assert [m.data for m in downs if isinstance(m, RelayData)] == [b"down%d" % n for n in range(5)]
    await edge.send(RelayClose(session_id="r1", reason="done"))
    closed = await worker.recv()
    assert isinstance(closed, RelayClose) and closed.session_id == "r1"
    # Over: a frame for it is refused on the worker's behalf.
    await worker.send(RelayData(session_id="r1", data=b"late"))
    assert isinstance(await worker.recv(), RelayClose)


async def test_worker_leaving_fails_the_edges_pending_offer(cluster: Cluster) -> None:
    worker = await cluster.worker(1, "w1")
    edge = await cluster.connect(0, Role.EDGE, "e1")
    await edge.send(Offer(session_id="s1", sdp="x", model="m"))
    assert isinstance(await worker.recv(), Offer)
    await worker.ws.close()
    gone = await edge.recv()
    assert isinstance(gone, SignalError) and gone.code is ErrorCode.NO_WORKER
    assert gone.session_id == "s1"


async def test_a_live_peer_id_is_not_taken_from_another_instance(cluster: Cluster) -> None:
    first = await cluster.connect(0, Role.EDGE, "e1")
    reading = asyncio.create_task(first.recv())  # reading, so its client answers pings
    headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'e1', now=cluster.clock())}"}
    second = Peer(await cluster.clients[1].ws_connect("/v1/signal", headers=headers))
    assert await second.closed_with() == CloseCode.PEER_ID_IN_USE
    await first.send(Offer(session_id="s1", sdp="x", model="none"))
    still = await reading  # the first connection still works
    assert isinstance(still, SignalError) and still.code is ErrorCode.NO_WORKER


async def test_a_silent_holder_elsewhere_is_replaced(cluster: Cluster) -> None:
    headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'e1', now=cluster.clock())}"}
    # autoping off: this connection will not answer the probe's ping, as a dead one would not.
    ws = await cluster.clients[0].ws_connect("/v1/signal", headers=headers, autoping=False)
    silent = Peer(ws)
    assert isinstance(await silent.recv(), Welcome)
    newer = await cluster.connect(1, Role.EDGE, "e1")
    assert await silent.closed_with() == CloseCode.NORMAL
    await newer.send(Offer(session_id="s1", sdp="x", model="none"))
    assert isinstance(await newer.recv(), SignalError)


async def _welcome(peer: Peer) -> object:
    """The first frame, however long a takeover probe before it took (a loaded machine)."""
    frame = await peer.ws.receive(timeout=30)
    return decode(frame.data)


async def test_a_peer_resumes_on_another_instance_at_once(cluster: Cluster) -> None:
    """The same process, reconnected to instance B with its resume secret, takes its id
    from its connection on instance A at once, though that one is alive (and would keep
    the id against any other newcomer)."""
    first = await cluster.connect(0, Role.EDGE, "e1")
    old = first.welcome
    assert old is not None and old.resume
    closed = asyncio.create_task(first.closed_with())  # reading: it answers pings
    headers = {
        "Authorization": f"Bearer {token_for(Role.EDGE, 'e1', now=cluster.clock())}",
        RESUME_HEADER: old.resume,
    }
    moved = Peer(await cluster.clients[1].ws_connect("/v1/signal", headers=headers))
    welcome = await _welcome(moved)
    assert isinstance(welcome, Welcome) and welcome.resume not in (None, old.resume)
    assert await closed == CloseCode.RESUMED
    # Instance B holds the id now, for the whole cluster: a plain newcomer on A is refused
    # while the resumed connection is alive.
    answering = asyncio.create_task(moved.ws.receive(timeout=120))
    headers.pop(RESUME_HEADER)
    stranger = Peer(await cluster.clients[0].ws_connect("/v1/signal", headers=headers))
    assert await stranger.closed_with() == CloseCode.PEER_ID_IN_USE
    await moved.send(Offer(session_id="s1", sdp="x", model="none"))
    reply = decode((await answering).data)
    assert isinstance(reply, SignalError) and reply.code is ErrorCode.NO_WORKER


async def test_a_wrong_secret_does_not_take_a_live_id_from_another_instance(
    cluster: Cluster,
) -> None:
    first = await cluster.connect(0, Role.EDGE, "e1")
    reading = asyncio.create_task(first.ws.receive(timeout=120))
    headers = {
        "Authorization": f"Bearer {token_for(Role.EDGE, 'e1', now=cluster.clock())}",
        RESUME_HEADER: "not-the-secret",
    }
    second = Peer(await cluster.clients[1].ws_connect("/v1/signal", headers=headers))
    assert await second.closed_with() == CloseCode.PEER_ID_IN_USE
    await first.send(Offer(session_id="s1", sdp="x", model="none"))
    still = decode((await reading).data)
    assert isinstance(still, SignalError) and still.code is ErrorCode.NO_WORKER
