"""The WebSocket endpoint over a real loopback server and real client sockets."""

from __future__ import annotations

import logging

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.messages import (
    Answer,
    ErrorCode,
    IceServer,
    LoadReport,
    Offer,
    Register,
    Role,
    SignalError,
    Welcome,
)
from shared.tokens import key_id
from signaling.app import create_app
from signaling.registry.base import WorkerInfo
from signaling.registry.memory import MemoryRegistry
from signaling.settings import SignalingSettings
from tests.signaling.conftest import AppClient, Connect
from tests.signaling.support import SECRET, FakeClock, Peer, token_for

SDP_OFFER = "v=0\r\no=edge 1 1 IN IP4 127.0.0.1\r\n"
SDP_ANSWER = "v=0\r\no=worker 1 1 IN IP4 127.0.0.1\r\n"


async def registered_worker(
    connect: Connect, peer_id: str, models: tuple[str, ...] = ("m",)
) -> Peer:
    worker = await connect(Role.WORKER, peer_id)
    await worker.send(Register(models=models, capacity=4))
    # The server acts on a peer's frames in order, so an answered probe proves the
    # registration landed: an answer to an unknown session is refused with this id.
    await worker.send(Answer(session_id="probe", sdp=""))
    reply = await worker.recv()
    assert isinstance(reply, SignalError) and reply.session_id == "probe"
    return worker


async def offer(edge: Peer, session_id: str, model: str = "m") -> None:
    await edge.send(Offer(session_id=session_id, sdp=SDP_OFFER, model=model))


# ---------------------------------------------------------------------------- authentication


def assert_401(status: int, body: dict[str, dict[str, object]], code: str) -> None:
    assert status == 401
    error = body["error"]
    assert error["message"]
    assert error == {
        "message": error["message"],
        "type": "authentication_error",
        "param": None,
        "code": code,
    }


@pytest.mark.parametrize("authorization", [None, "", "Bearer ", "Basic dXNlcjpwYXNz"])
async def test_missing_token_is_refused_before_upgrade(
    client: AppClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/v1/signal", headers=headers)
    assert_401(response.status, await response.json(), "missing_token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_token_in_query_string_is_not_accepted(client: AppClient) -> None:
    response = await client.get("/v1/signal", params={"token": token_for(Role.EDGE, "e1")})
    assert_401(response.status, await response.json(), "missing_token")


@pytest.mark.parametrize(
    ("kid", "code"),
    [
        (key_id("x" * 32), "unknown_key"),  # names a key this server does not hold
        (key_id(SECRET), "token_invalid"),  # copies ours (anyone can read it off a token)
        (None, "token_invalid"),  # names none: every secret is tried, none matches
    ],
)
async def test_forged_token_is_invalid(
    client: AppClient, caplog: pytest.LogCaptureFixture, kid: str | None, code: str
) -> None:
    forged = jwt.encode(
        {"iss": "tandem", "sub": "e1", "role": "edge", "exp": int(FakeClock()()) + 60},
        "x" * 32,
        algorithm="HS256",
        headers={"kid": kid} if kid else None,
    )
    with caplog.at_level(logging.INFO, logger="signaling"):
        response = await client.get("/v1/signal", headers={"Authorization": f"Bearer {forged}"})
    assert_401(response.status, await response.json(), code)
    assert code in caplog.text
    assert forged not in caplog.text


async def test_garbage_token_is_invalid(client: AppClient) -> None:
    response = await client.get("/v1/signal", headers={"Authorization": "Bearer not.a.jwt"})
    assert_401(response.status, await response.json(), "token_invalid")


async def test_expired_token_by_injected_clock(
    client: AppClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(Role.WORKER, "w1", now=clock(), ttl_s=60)
    clock.now += 61
    with caplog.at_level(logging.INFO, logger="signaling"):
        response = await client.get("/v1/signal", headers={"Authorization": f"Bearer {token}"})
    assert_401(response.status, await response.json(), "token_expired")
    assert token not in caplog.text


async def test_websocket_client_sees_401(client: AppClient) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as excinfo:
        await client.ws_connect("/v1/signal", headers={"Authorization": "Bearer nope"})
    assert excinfo.value.status == 401


# ---------------------------------------------------------------------------------- welcome


async def test_welcome_names_peer_and_role_with_no_ice_servers_by_default(
    client: AppClient, clock: FakeClock
) -> None:
    headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'pi-kitchen', now=clock())}"}
    async with client.ws_connect("/v1/signal", headers=headers) as ws:
        welcome = await Peer(ws).recv()
    assert isinstance(welcome, Welcome) and welcome.resume  # this connection's own secret
    assert welcome.model_copy(update={"resume": None}) == Welcome(
        peer_id="pi-kitchen", role=Role.EDGE, ice_servers=()
    )


async def test_welcome_hands_out_stun_url(clock: FakeClock) -> None:
    settings = SignalingSettings(secret=SecretStr(SECRET), stun_url="stun:stun.example.org:3478")
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        headers = {"Authorization": f"Bearer {token_for(Role.WORKER, 'gpu-1', now=clock())}"}
        async with client.ws_connect("/v1/signal", headers=headers) as ws:
            welcome = await Peer(ws).recv()
    assert isinstance(welcome, Welcome)
    assert welcome.model_copy(update={"resume": None}) == Welcome(
        peer_id="gpu-1",
        role=Role.WORKER,
        ice_servers=(IceServer(urls=("stun:stun.example.org:3478",)),),
    )


# -------------------------------------------------------------------------------- brokering


async def test_offer_reaches_worker_and_answer_reaches_edge(
    connect: Connect, registry: MemoryRegistry
) -> None:
    worker = await registered_worker(connect, "gpu-1", models=("m", "n"))
    assert await registry.get("gpu-1") == WorkerInfo(peer_id="gpu-1", models=("m", "n"), capacity=4)
    edge = await connect(Role.EDGE, "pi-1")

    # peer_id set by the edge is ignored: signaling says who the offer is from.
    await edge.send(Offer(session_id="s1", sdp=SDP_OFFER, model="n", peer_id="spoofed"))
    assert await worker.recv() == Offer(session_id="s1", sdp=SDP_OFFER, model="n", peer_id="pi-1")

    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER, peer_id="spoofed"))
    assert await edge.recv() == Answer(session_id="s1", sdp=SDP_ANSWER, peer_id="gpu-1")


async def test_offer_goes_to_least_loaded_worker(connect: Connect) -> None:
    busy = await registered_worker(connect, "a-busy")
    idle = await registered_worker(connect, "b-idle")
    await busy.send(LoadReport(active=3))
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    assert await idle.recv() == Offer(session_id="s1", sdp=SDP_OFFER, model="m", peer_id="pi-1")


async def test_answer_for_session_of_another_worker_is_refused(connect: Connect) -> None:
    chosen = await registered_worker(connect, "a-chosen")
    other = await registered_worker(connect, "b-other")
    await other.send(LoadReport(active=2))
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    assert isinstance(await chosen.recv(), Offer)

    await other.send(Answer(session_id="s1", sdp="hijack"))
    refusal = await other.recv()
    assert isinstance(refusal, SignalError)
    assert (refusal.code, refusal.session_id) == (ErrorCode.BAD_REQUEST, "s1")

    # The session is still pending for the right worker, and the edge saw only its answer.
    await chosen.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    assert await edge.recv() == Answer(session_id="s1", sdp=SDP_ANSWER, peer_id="a-chosen")


async def test_session_is_answered_only_once(connect: Connect) -> None:
    worker = await registered_worker(connect, "gpu-1")
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    await worker.recv()
    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    await edge.recv()
    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    refusal = await worker.recv()
    assert isinstance(refusal, SignalError) and refusal.code is ErrorCode.BAD_REQUEST


async def test_no_worker_for_model(connect: Connect) -> None:
    await registered_worker(connect, "gpu-1", models=("llama",))
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1", model="qwen")
    assert await edge.recv() == SignalError(
        code=ErrorCode.NO_WORKER, message="no worker serves model qwen", session_id="s1"
    )


async def test_no_worker_at_all(connect: Connect) -> None:
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1", model="")
    reply = await edge.recv()
    assert isinstance(reply, SignalError)
    assert (reply.code, reply.session_id) == (ErrorCode.NO_WORKER, "s1")


async def test_draining_worker_gets_no_offers(connect: Connect) -> None:
    worker = await registered_worker(connect, "gpu-1")
    await worker.send(LoadReport(active=1, draining=True))
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    reply = await edge.recv()
    assert isinstance(reply, SignalError) and reply.code is ErrorCode.NO_WORKER


async def test_duplicate_session_id_from_another_edge_is_refused(connect: Connect) -> None:
    worker = await registered_worker(connect, "gpu-1")
    first, second = await connect(Role.EDGE, "pi-1"), await connect(Role.EDGE, "pi-2")
    await offer(first, "s1")
    assert isinstance(await worker.recv(), Offer)
    await offer(second, "s1")
    refusal = await second.recv()
    assert isinstance(refusal, SignalError)
    assert (refusal.code, refusal.session_id) == (ErrorCode.BAD_REQUEST, "s1")
    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    assert await first.recv() == Answer(session_id="s1", sdp=SDP_ANSWER, peer_id="gpu-1")


async def test_pending_session_expires(connect: Connect, clock: FakeClock) -> None:
    worker = await registered_worker(connect, "gpu-1")
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    await worker.recv()
    clock.now += 31  # offer_timeout_s is 30
    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    refusal = await worker.recv()
    assert isinstance(refusal, SignalError)
    assert (refusal.code, refusal.session_id) == (ErrorCode.BAD_REQUEST, "s1")


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (Role.EDGE, Register(models=("m",), capacity=1)),
        (Role.EDGE, Answer(session_id="s1", sdp="")),
        (Role.WORKER, Offer(session_id="s1", sdp="")),
        (Role.WORKER, Welcome(peer_id="x", role=Role.WORKER)),
    ],
)
async def test_message_not_allowed_for_role(
    connect: Connect, role: Role, message: Register | Answer | Offer
) -> None:
    peer = await connect(role, "p1")
    await peer.send(message)
    refusal = await peer.recv()
    assert isinstance(refusal, SignalError) and refusal.code is ErrorCode.BAD_REQUEST
    assert message.type_tag in refusal.message


async def test_load_report_before_register_is_refused(
    connect: Connect, registry: MemoryRegistry
) -> None:
    worker = await connect(Role.WORKER, "gpu-1")
    await worker.send(LoadReport(active=1))
    refusal = await worker.recv()
    assert isinstance(refusal, SignalError) and refusal.code is ErrorCode.BAD_REQUEST
    assert await registry.workers() == []


# ------------------------------------------------------------------------ misbehaving peers


@pytest.mark.parametrize("bad_frame", [b"\xc1 not msgpack", "text frame"])
async def test_bad_frame_closes_only_that_peer(connect: Connect, bad_frame: bytes | str) -> None:
    worker = await registered_worker(connect, "gpu-1")
    good_edge = await connect(Role.EDGE, "pi-good")
    await offer(good_edge, "s1")
    assert isinstance(await worker.recv(), Offer)

    bad_edge = await connect(Role.EDGE, "pi-bad")
    if isinstance(bad_frame, bytes):
        await bad_edge.ws.send_bytes(bad_frame)
    else:
        await bad_edge.ws.send_str(bad_frame)
    assert await bad_edge.closed_with() == 1008

    await worker.send(Answer(session_id="s1", sdp=SDP_ANSWER))
    assert await good_edge.recv() == Answer(session_id="s1", sdp=SDP_ANSWER, peer_id="gpu-1")
    await offer(good_edge, "s2")
    assert await worker.recv() == Offer(
        session_id="s2", sdp=SDP_OFFER, model="m", peer_id="pi-good"
    )


async def test_worker_disconnect_fails_pending_sessions(
    connect: Connect, registry: MemoryRegistry
) -> None:
    worker = await registered_worker(connect, "gpu-1")
    edge = await connect(Role.EDGE, "pi-1")
    await offer(edge, "s1")
    await worker.recv()
    await worker.ws.close()

    reply = await edge.recv()
    assert isinstance(reply, SignalError)
    assert (reply.code, reply.session_id) == (ErrorCode.NO_WORKER, "s1")
    assert await registry.workers() == []


async def test_reconnect_replaces_a_silent_older_connection(clock: FakeClock) -> None:
    """A peer that reconnects before its old socket was noticed dead takes its id over:
    the old connection (which reads nothing, so answers no ping) is closed."""
    settings = SignalingSettings(secret=SecretStr(SECRET), takeover_probe_s=0.2)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:

        async def connect(role: Role, peer_id: str) -> Peer:
            headers = {"Authorization": f"Bearer {token_for(role, peer_id, now=clock())}"}
            peer = Peer(await client.ws_connect("/v1/signal", headers=headers, autoping=False))
            assert isinstance(await peer.recv(), Welcome)
            return peer

        old = await registered_worker(connect, "gpu-1")
        new = await connect(Role.WORKER, "gpu-1")
        assert await old.closed_with() == 1000
        # The replaced connection's registration is gone; the new one must register itself.
        edge = await connect(Role.EDGE, "pi-1")
        await offer(edge, "s1")
        assert isinstance(await edge.recv(), SignalError)

        await new.send(Register(models=("m",), capacity=1))
        await offer(edge, "s2")
        assert await new.recv() == Offer(session_id="s2", sdp=SDP_OFFER, model="m", peer_id="pi-1")
        health = await (await client.get("/healthz")).json()
        assert health["workers"] == 1


async def test_oversized_frame_closes_peer_as_too_big(clock: FakeClock) -> None:
    settings = SignalingSettings(secret=SecretStr(SECRET), max_frame_bytes=1024)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'pi-1', now=clock())}"}
        async with client.ws_connect("/v1/signal", headers=headers) as ws:
            peer = Peer(ws)
            assert isinstance(await peer.recv(), Welcome)
            await peer.send(Offer(session_id="s1", sdp="x" * 2048))
            assert await peer.closed_with() == 1009  # message too big
