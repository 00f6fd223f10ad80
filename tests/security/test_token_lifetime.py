"""Issue 13, item 2: a token's lifetime holds on open connections, and secrets rotate.

The attacks: before the fix, expiry was checked only at connect, so a socket opened with
a token (a leaked one, or one whose device was retired) lived forever and kept minting
TURN credentials; and there was no way to rotate the secret with an overlap, so a secret
was never rotated (rotating refused every peer at once, until each was re-provisioned
and restarted by hand).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from link import SignalingClient
from shared.messages import Role, Welcome
from shared.settings import PeerSettings
from shared.tokens import key_id, mint_token, verify_token
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.security.auth_support import (
    OTHER_SECRET,
    REPO,
    SECRET,
    bearer,
    free_port,
    signaling_server,
    token,
    upgrade_status,
)
from tests.signaling.support import FakeClock, Peer
from tests.support.wait import eventually

AppClient = TestClient[web.Request, web.Application]
TURN = "turn:turn.example.org:3478?transport=udp"


@asynccontextmanager
async def app_with_clock(clock: FakeClock) -> AsyncIterator[AppClient]:
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        expiry_check_s=0.05,  # the fake clock jumps; re-check it often
        turn_url=TURN,
        turn_secret=SecretStr("t" * 32),
    )
    app = create_app(settings, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def fake_token(clock: FakeClock, ttl_s: int, peer_id: str = "pi-1") -> str:
    return mint_token(SECRET, role=Role.EDGE, peer_id=peer_id, ttl_s=ttl_s, now=clock())


async def metric(client: AppClient, line_start: str) -> float:
    text = await (await client.get("/metrics")).text()
    return next(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(line_start))


async def test_an_open_connection_is_closed_when_its_token_expires() -> None:
    """Connect with a 60 s token, let 61 s pass: signaling closes the socket (4001, with
    the reason) instead of serving it, and refreshing its TURN credentials, forever."""
    clock = FakeClock()
    async with app_with_clock(clock) as client:
        ws = await client.ws_connect("/v1/signal", headers=bearer(fake_token(clock, 60)))
        peer = Peer(ws)
        welcome = await peer.recv()
        assert isinstance(welcome, Welcome) and welcome.ice_servers[0].username
        clock.now += 61
        assert await peer.closed_with() == 4001
        assert "token expired" in peer.close_reason
        assert await metric(client, 'tandem_signaling_closes_total{reason="token_expired"}') == 1
        health = await (await client.get("/healthz")).json()
        assert health["edges"] == 0


async def test_a_peer_comes_back_with_the_renewed_token_in_its_token_file(tmp_path: Path) -> None:
    """The peer's token file is re-read at every reconnect: after its token expired the
    peer is refused until the file holds a renewed one, then it is back, no restart."""
    clock = FakeClock()
    token_file = tmp_path / "token"
    token_file.write_text(fake_token(clock, 60) + "\n")
    source = PeerSettings(token_file=token_file).token_source()
    assert source is not None
    async with app_with_clock(clock) as client:
        peer = SignalingClient(
            str(client.make_url("/v1/signal")), source, reconnect_min_s=0.05, reconnect_max_s=0.2
        )
        peer.start()
        try:
            await peer.wait_connected(30)
            clock.now += 61  # expired, and the file still holds the old token
            edges = 'tandem_signaling_connections_total{role="edge"}'
            expired = 'tandem_signaling_auth_failures_total{reason="token_expired"}'

            async def refused_again() -> bool:
                return await metric(client, expired) >= 2

            await eventually(refused_again, what="the expired token refused at reconnect")
            assert not peer.connected
            token_file.write_text(fake_token(clock, 3600))  # the operator renews it

            async def back() -> bool:
                return peer.connected and await metric(client, edges) == 2

            await eventually(back, what="the peer back with its renewed token")
        finally:
            await peer.aclose()


def mint_with_cli(secret: str, previous: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update({"TANDEM_SECRET": secret, "TANDEM_PREVIOUS_SECRET": previous})
    result = subprocess.run(
        [sys.executable, "-m", "signaling", "token", "--role", "edge", "--peer-id", "pi-1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


async def test_rotating_the_secret_keeps_renewed_peers_and_refuses_old_tokens(
    tmp_path: Path,
) -> None:
    """Rotate OLD -> NEW with an overlap: a peer whose token file is renewed rides
    through (accepted under --previous-secret, then with its new token); once the
    previous secret is removed, a token signed with OLD (say, a stolen one) is refused."""
    port = free_port()
    token_file = tmp_path / "token"
    old_token = token(Role.EDGE, "pi-1", secret=OTHER_SECRET)
    token_file.write_text(old_token)
    source = PeerSettings(token_file=token_file).token_source()
    assert source is not None
    url = f"ws://127.0.0.1:{port}/v1/signal"
    peer = SignalingClient(url, source, reconnect_min_s=0.05, reconnect_max_s=0.5)
    try:
        async with signaling_server(tmp_path, env={"TANDEM_SECRET": OTHER_SECRET}, port=port):
            peer.start()
            await peer.wait_connected(30)
        await eventually(lambda: not peer.connected, what="the peer saw signaling go")
        rotation = {"TANDEM_SECRET": SECRET, "TANDEM_PREVIOUS_SECRET": OTHER_SECRET}
        async with signaling_server(tmp_path, env=rotation, port=port):
            await peer.wait_connected(60)  # reconnected with the old token: the overlap
            new_token = mint_with_cli(SECRET, OTHER_SECRET)
            assert verify_token(SECRET, new_token, now=time.time()).key_id == key_id(SECRET)
            token_file.write_text(new_token)
        await eventually(lambda: not peer.connected, what="the peer saw signaling go")
        async with (
            signaling_server(tmp_path, port=port) as server,
            aiohttp.ClientSession() as session,
        ):
            await peer.wait_connected(60)  # reconnected with the new token
            assert await upgrade_status(session, url, bearer(old_token)) == 401
            async with session.get(server.http + "/v1/signal", headers=bearer(old_token)) as r:
                assert (await r.json())["error"]["code"] == "unknown_key"
            assert SECRET not in server.log() and OTHER_SECRET not in server.log()
    finally:
        await peer.aclose()
