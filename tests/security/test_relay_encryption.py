"""Issue 13, item 4: what signaling relays must be end-to-end ciphertext.

The attacker stands where signaling's operator, its logs, or anyone on the path between
a peer and signaling stand (``tests.support.onpath``: every byte, both ways). Before
this change ``RelayData.data`` was the msgpack frame itself, so the prompt and the
answer crossed signaling readable, and could be altered or replayed unnoticed. The
peers and signaling here are the real ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from link import LinkClosed, RelayLink, SignalingClient, SignalingRefused
from shared.messages import (
    ErrorCode,
    GenerateRequest,
    Ping,
    Pong,
    Register,
    RelayAccept,
    RelayClose,
    RelayOpen,
    Role,
    SamplingParams,
    TokenChunk,
)
from tests.security.support import metric, raw_peer, signaling
from tests.support.apps import token
from tests.support.edge import wait_for_workers
from tests.support.onpath import Tamper, on_path
from tests.support.relay import relay_worker

PROMPT = "The launch code is PAPAYA-7731-ZEBRA; keep it secret."
REPLY = "The vault opens with MANGO-4410-OTTER."


@dataclass
class Peers:
    edge: SignalingClient
    worker: SignalingClient
    accepted: asyncio.Queue[RelayLink]


@asynccontextmanager
async def peers(port: int, *, edge_port: int, worker_port: int) -> AsyncIterator[Peers]:
    """An edge and a worker (the library both programs use), each reaching signaling
    through its own port (a proxy's, or signaling's own)."""
    relaying = relay_worker(f"ws://127.0.0.1:{worker_port}/v1/signal")
    worker = relaying.client
    edge = SignalingClient(f"ws://127.0.0.1:{edge_port}/v1/signal", token(Role.EDGE, "edge-1"))
    worker.start()
    edge.start()
    try:
        await worker.wait_connected(30)
        await edge.wait_connected(30)
        await wait_for_workers(f"ws://127.0.0.1:{port}/v1/signal", 1)
        yield Peers(edge, worker, relaying.accepted)
    finally:
        await edge.aclose()
        await worker.aclose()


async def open_session(peers: Peers, session_id: str) -> tuple[RelayLink, RelayLink]:
    edge, _ = await peers.edge.relays.open(
        session_id, model="m", timeout_s=30, max_frame_bytes=4096
    )
    return edge, await asyncio.wait_for(peers.accepted.get(), 30)


async def test_signaling_and_the_wire_see_only_ciphertext(caplog: pytest.LogCaptureFixture) -> None:
    """The attack: read a relayed prompt and its answer where signaling handles them (on
    both peers' sockets, and in signaling's DEBUG log). Before: both in clear."""
    caplog.set_level(logging.DEBUG)
    async with (
        signaling() as port,
        on_path(port) as edge_wire,
        on_path(port) as worker_wire,
        peers(port, edge_port=edge_wire.port, worker_port=worker_wire.port) as both,
    ):
        edge, worker = await open_session(both, "sess-secret")
        request = GenerateRequest(
            request_id="r1",
            prompt=PROMPT + " " + "filler " * 2000,  # several frames: fragments too
            params=SamplingParams(max_tokens=8),
        )
        await edge.send(request)
        assert await asyncio.wait_for(worker.recv(), 30) == request
        chunk = TokenChunk(request_id="r1", text=REPLY, n_tokens=9)
        await worker.send(chunk)
        assert await asyncio.wait_for(edge.recv(), 30) == chunk
    seen = bytes(edge_wire.to_server + edge_wire.to_client + worker_wire.to_server)
    seen += bytes(worker_wire.to_client)
    # The observer does see the relay (the envelope is plaintext here, on ws://)...
    assert b"relay_data" in worker_wire.to_client and b"sess-secret" in worker_wire.to_client
    assert len(worker_wire.to_client) > 2000 * len("filler ")
    # ...and none of what it carries.
    for secret in (PROMPT, REPLY, "PAPAYA-7731", "MANGO-4410"):
        assert secret.encode() not in seen
        assert secret not in caplog.text


def tamper_once(session_id: str, mode: str) -> tuple[Tamper, list[bool]]:
    """Alter (``flip``: one bit of the tag) or replay (``replay``: send it twice) the
    next relayed frame of ``session_id`` once armed (``armed[0] = True``)."""
    armed = [False]
    marker = session_id.encode()

    def tamper(payload: bytes) -> list[bytes]:
        if not (armed[0] and b"relay_data" in payload and marker in payload):
            return [payload]
        armed[0] = False
        if mode == "replay":
            return [payload, payload]
        return [payload[:-1] + bytes((payload[-1] ^ 0x01,))]

    return tamper, armed


@pytest.mark.parametrize(
    ("mode", "why"), [("flip", "failed authentication"), ("replay", "replayed")]
)
async def test_an_altered_or_replayed_frame_closes_only_its_session(
    mode: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack: on the path to the worker, alter one bit of a relayed frame, or
    deliver it twice. Before: an altered frame reached the worker as whatever it then
    decoded to, and a replayed one (a repeated prompt) was served again."""
    caplog.set_level(logging.WARNING)
    tamper, armed = tamper_once("sess-a", mode)
    async with (
        signaling() as port,
        on_path(port, tamper=tamper) as wire,
        peers(port, edge_port=port, worker_port=wire.port) as both,
    ):
        edge_a, worker_a = await open_session(both, "sess-a")
        edge_b, worker_b = await open_session(both, "sess-b")
        armed[0] = True
        await edge_a.send(Ping(nonce=1))
        if mode == "replay":  # the genuine copy arrives; its copy does not pass
            assert await asyncio.wait_for(worker_a.recv(), 30) == Ping(nonce=1)
        with pytest.raises(LinkClosed):
            await asyncio.wait_for(worker_a.recv(), 30)
        with pytest.raises(LinkClosed):  # the worker closed the session: the edge hears it
            await asyncio.wait_for(edge_a.recv(), 30)
        assert not armed[0], "the proxy tampered with a frame"
        # Only that session: the other one, on the same two sockets, carries on.
        await edge_b.send(Ping(nonce=2))
        assert await asyncio.wait_for(worker_b.recv(), 30) == Ping(nonce=2)
        await worker_b.send(Pong(nonce=2))
        assert await asyncio.wait_for(edge_b.recv(), 30) == Pong(nonce=2)
        assert both.worker.connected and both.edge.connected
        assert await metric(port, "tandem_signaling_connections_total", '{role="worker"}') == 1
    assert why in caplog.text


async def test_an_edge_that_sends_no_key_is_refused() -> None:
    """The attack: ask for a relayed session without a key (an older edge, or one that
    wants plaintext). Before: accepted, and every frame crossed signaling in clear."""
    async with (
        signaling() as port,
        peers(port, edge_port=port, worker_port=port) as both,
        raw_peer(port, Role.EDGE, "old-edge") as old,
    ):
        await old.send(RelayOpen(session_id="old-1", model="m"))
        refusal = await old.recv_until(RelayClose)
        assert isinstance(refusal, RelayClose) and refusal.session_id == "old-1"
        assert "no relay key" in refusal.reason
        assert both.accepted.empty()  # the worker made no link for it


async def test_a_worker_that_sends_no_key_is_refused() -> None:
    """The attack: accept a relayed session without a key (an older worker). Before:
    the edge sent its prompts through signaling in clear."""
    async with signaling() as port, raw_peer(port, Role.WORKER, "old-worker") as old:
        await old.send(Register(models=("m",), capacity=1))
        await wait_for_workers(f"ws://127.0.0.1:{port}/v1/signal", 1)
        edge = SignalingClient(f"ws://127.0.0.1:{port}/v1/signal", token(Role.EDGE, "edge-1"))
        edge.start()
        try:
            await edge.wait_connected(30)
            opening = asyncio.ensure_future(
                edge.relays.open("new-1", model="m", timeout_s=30, max_frame_bytes=4096)
            )
            request = await old.recv_until(RelayOpen)
            assert isinstance(request, RelayOpen) and len(request.key) == 32
            await old.send(RelayAccept(session_id="new-1", model="m"))
            with pytest.raises(SignalingRefused) as refused:
                await opening
            assert refused.value.code is ErrorCode.PROTOCOL_ERROR
            assert "no relay key" in str(refused.value)
            close = await old.recv_until(RelayClose)  # and the edge ended the session
            assert isinstance(close, RelayClose) and close.session_id == "new-1"
        finally:
            await edge.aclose()
