"""``SignalingClient``'s state machine against a real signaling app on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from link import SignalingClient, SignalingState, SignalingUnavailable
from shared.close_codes import CloseCode
from shared.codec import decode
from shared.messages import Role, Welcome
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, token
from tests.support.onpath import close_code, on_path
from tests.support.wait import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def signaling_on(port: int, **settings: Any) -> AsyncIterator[None]:
    runner = web.AppRunner(create_app(SignalingSettings(secret=SecretStr(SECRET), **settings)))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


def state_of(client: SignalingClient) -> SignalingState:
    return client.state  # read afresh each time (mypy would narrow a repeated attribute)


async def test_the_state_follows_the_connection() -> None:
    port = free_port()
    client = SignalingClient(
        f"ws://127.0.0.1:{port}/v1/signal",
        token(Role.EDGE, "edge-1"),
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    assert state_of(client) is SignalingState.CLOSED and not client.connected
    client.start()
    try:
        await eventually(lambda: client.state is SignalingState.CONNECTING, what="connecting")
        with pytest.raises(SignalingUnavailable):  # nothing listens there yet
            await client.wait_connected(0.05)
        async with signaling_on(port):
            await client.wait_connected(30)
            assert state_of(client) is SignalingState.CONNECTED and client.connected
            assert client.peer_id == "edge-1"
        # signaling went away: back to connecting (and retrying), not connected
        await eventually(lambda: client.state is SignalingState.CONNECTING, what="connection lost")
        assert not client.connected
        async with signaling_on(port):  # ...and it comes back by itself
            await client.wait_connected(30)
            assert client.connected
    finally:
        await client.aclose()
    assert state_of(client) is SignalingState.CLOSED and not client.connected


async def test_reconnect_drops_a_silently_dead_connection_and_opens_a_new_one() -> None:
    """After a network change the old connection hears nothing and says nothing (its
    address is gone); ``reconnect`` must not wait for TCP or the heartbeat to tell."""
    dead = False
    welcomes = 0

    def silence_when_dead(payload: bytes) -> list[bytes]:
        nonlocal welcomes
        if dead:
            return []
        welcomes += isinstance(decode(payload, max_frame_bytes=1 << 20), Welcome)
        return [payload]

    port = free_port()
    async with signaling_on(port), on_path(port, tamper=silence_when_dead) as proxy:
        client = SignalingClient(
            f"ws://127.0.0.1:{proxy.port}/v1/signal",
            token(Role.EDGE, "edge-1"),
            reconnect_min_s=0.05,
            heartbeat_s=3600,  # only reconnect() can notice: no heartbeat will
        )
        client.start()
        try:
            await client.wait_connected(30)
            assert welcomes == 1
            dead = True  # signaling's frames no longer arrive
            await client.reconnect()
            dead = False  # the new connection's path works
            await eventually(lambda: welcomes == 2 and client.connected, what="a new connection")
        finally:
            await client.aclose()


async def test_after_a_network_change_the_client_resumes_its_id_at_once() -> None:
    """The old connection is stranded, as when the address it was made from vanishes:
    signaling still lists it and hears nothing more from it. ``reconnect`` opens a new one
    that presents the old one's resume secret, so signaling closes the old one as resumed
    (4010) and welcomes the new one without first probing the old one (a minute here:
    only the resume can explain a prompt new connection and that close code). The client
    reconnects at once, not after its (hour-long, here) backoff."""
    welcomes = 0

    def count_welcomes(payload: bytes) -> list[bytes]:
        nonlocal welcomes
        welcomes += isinstance(decode(payload, max_frame_bytes=1 << 20), Welcome)
        return [payload]

    port = free_port()
    async with (
        signaling_on(port, takeover_probe_s=60),
        on_path(port, tamper=count_welcomes) as proxy,
    ):
        client = SignalingClient(
            f"ws://127.0.0.1:{proxy.port}/v1/signal",
            token(Role.EDGE, "edge-1"),
            heartbeat_s=3600,
            reconnect_min_s=3600,  # a network change skips the backoff: no wait at all
            reconnect_max_s=3600,
        )
        client.start()
        try:
            await client.wait_connected(30)
            proxy.strand()
            await client.reconnect()
            await eventually(lambda: welcomes == 2 and client.connected, what="a new connection")
            code = await eventually(lambda: close_code(proxy.stranded), what="the old one closed")
            assert code == CloseCode.RESUMED
        finally:
            await client.aclose()


@asynccontextmanager
async def backed_off_client() -> AsyncIterator[tuple[SignalingClient, int]]:
    """A client whose first attempt failed (signaling not listening on the port yet),
    now waiting out an hour-long backoff: only a cut-short backoff can connect it."""
    port = free_port()
    client = SignalingClient(
        f"ws://127.0.0.1:{port}/v1/signal",
        token(Role.EDGE, "edge-1"),
        reconnect_min_s=3600,
        reconnect_max_s=3600,
    )
    client.start()
    try:
        await eventually(lambda: client.last_error is not None, what="a failed first attempt")
        yield client, port
    finally:
        await client.aclose()


async def test_a_network_change_cuts_a_backoff_short() -> None:
    """Signaling was unreachable (the old network), so the client waits out a long
    backoff; a network change means it may be reachable now: it tries at once."""
    async with backed_off_client() as (client, port), signaling_on(port):
        await client.reconnect()
        await client.wait_connected(30)


async def test_a_new_address_cuts_a_backoff_short_and_leaves_a_connection_alone() -> None:
    async with backed_off_client() as (client, port), signaling_on(port):
        client.retry_now()  # waiting out an hour-long backoff: try now instead
        await client.wait_connected(30)
        welcomed_as = client.peer_id
        client.retry_now()  # connected: nothing to do
        assert client.connected and client.peer_id == welcomed_as
