"""TURN REST API credentials, and how peers receive (and keep) them."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.codec import decode
from shared.messages import Role, Welcome
from signaling.app import create_app
from signaling.settings import SignalingSettings
from signaling.turn_credentials import expand_turn_urls, ice_servers, turn_credentials
from tests.signaling.support import SECRET, FakeClock, token_for

# Computed independently: printf '%s' "1700003600:edge-1" |
#   openssl dgst -sha1 -hmac "coturn-shared-secret" -binary | base64
GOLDEN = ("1700003600:edge-1", "eHPAJtRRAIhx+1w480Ujb4BOchg=")


def test_credentials_follow_the_coturn_rest_scheme() -> None:
    assert (
        turn_credentials("coturn-shared-secret", "edge-1", now=1_700_000_000, ttl_s=3600) == GOLDEN
    )


def test_each_peer_gets_its_own_credentials() -> None:
    a = turn_credentials("s", "edge-1", now=0, ttl_s=60)
    b = turn_credentials("s", "edge-2", now=0, ttl_s=60)
    assert a != b and a[0].endswith(":edge-1")


def test_ice_servers_hold_stun_and_turn_with_credentials() -> None:
    servers = ice_servers(
        stun_urls=("stun:10.0.0.1:3478",),
        turn_urls=("turn:10.0.0.1:3478?transport=udp", "turn:10.0.0.1:3478?transport=tcp"),
        turn_secret="coturn-shared-secret",
        peer_id="edge-1",
        now=1_700_000_000,
        ttl_s=3600,
    )
    assert servers[0].urls == ("stun:10.0.0.1:3478",) and servers[0].username is None
    assert servers[1].urls[1].endswith("transport=tcp")
    assert (servers[1].username, servers[1].credential) == GOLDEN


def test_a_turn_url_without_a_transport_is_offered_over_udp_and_tcp() -> None:
    servers = ice_servers(
        stun_urls=(),
        turn_urls=("turn:10.0.0.1:3478", "turns:10.0.0.1:443"),
        turn_secret="coturn-shared-secret",
        peer_id="edge-1",
        now=1_700_000_000,
        ttl_s=3600,
    )
    assert servers[0].urls == (
        "turn:10.0.0.1:3478?transport=udp",
        "turn:10.0.0.1:3478?transport=tcp",
        "turns:10.0.0.1:443",  # TLS: TCP already
    )
    # Explicit transports are kept as written, and nothing is offered twice.
    assert expand_turn_urls(
        ("turn:h:3478?transport=tcp", "turn:h:3478", "TURN:h:3478?Transport=UDP")
    ) == (
        "turn:h:3478?transport=tcp",
        "turn:h:3478?transport=udp",
        "TURN:h:3478?Transport=UDP",
    )


def test_no_turn_without_a_secret() -> None:
    servers = ice_servers(
        stun_urls=(), turn_urls=("turn:x:3478",), turn_secret=None, peer_id="p", now=0, ttl_s=60
    )
    assert servers == ()


async def test_welcome_carries_fresh_credentials_and_they_are_refreshed() -> None:
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        turn_url="turn:10.0.0.1:3478?transport=udp",
        turn_secret=SecretStr("coturn-shared-secret"),
        turn_ttl_s=10,
    )
    clock = FakeClock()
    app: web.Application = create_app(settings, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'edge-1', now=clock())}"}
        ws = await client.ws_connect("/v1/signal", headers=headers)
        first = decode((await ws.receive(timeout=2)).data)
        assert isinstance(first, Welcome)
        (turn,) = first.ice_servers
        assert turn.username == f"{int(clock()) + 10}:edge-1"
        clock.now += 5  # half the lifetime later, signaling pushes new credentials
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.BINARY
        second = decode(msg.data)
        assert isinstance(second, Welcome)
        assert second.ice_servers[0].username == f"{int(clock()) + 10}:edge-1"
        await ws.close()
        await asyncio.sleep(0)
