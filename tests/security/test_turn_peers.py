"""Issue 13, item 10: TURN must not reach the signaling host's networks.

Every edge gets TURN credentials from signaling. The attack: with them, ask coturn to
relay to an address that is not a peer on the internet: the cloud metadata service
(169.254.169.254), the host's private network (10/8, 172.16/12, 192.168/16, CGNAT),
loopback (signaling's own port), or, over a TCP allocation (RFC 6062), any TCP service
such as an HTTP metadata endpoint. Before: coturn run with the config the docs showed
denied only loopback (its default): run against that config, this test got no refusal
for 169.254.169.254 and a TCP allocation. Now the shipped
``deploy/coturn/turnserver.conf`` (the one docs/connectivity.md shows) refuses every
such peer with 403 and TCP allocations with 442, while a peer it allows still gets its
data.

The config is used as shipped, with its placeholders filled; the test adds only what a
loopback test needs: a free port, a log and pid file, no TLS listeners (no certificate),
and its one allowed peer, 127.0.0.2, the way tests/netns allows its own network.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aioice import stun
from aioice.stun import TransactionFailed
from aioice.turn import TurnClientTcpProtocol, create_turn_endpoint

from signaling.turn_credentials import ice_servers
from tests.support.coturn import free_udp_tcp_port, needs_coturn
from tests.support.wait import eventually

pytestmark = needs_coturn

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
CONTROL_PEER = "127.0.0.2"
"""The one address this test lets back in (allowed-peer-ip), to prove relaying works."""

FORBIDDEN = [
    ("169.254.169.254", 80),  # cloud metadata
    ("10.0.0.1", 8765),  # the host's private network
    ("172.16.0.1", 8765),
    ("192.168.1.1", 8765),
    ("100.64.0.1", 8765),  # carrier-grade NAT
    ("127.0.0.1", 8765),  # signaling on loopback
]


def shipped_config(workdir: Path, port: int, secret: str) -> str:
    text = SHIPPED.read_text().replace("PUBLIC_IP", "127.0.0.1")
    text = text.replace("THE_TURN_SECRET", secret).replace("listening-port=3478", "")
    return text + "\n".join(
        [
            "",
            "# --- added by the test (loopback only) ---",
            f"listening-port={port}",
            "no-tls",
            "no-dtls",
            "allow-loopback-peers",  # coturn's own loopback ban, so the ACL decides alone
            f"allowed-peer-ip={CONTROL_PEER}",
            f"userdb={workdir / 'turndb'}",
            f"pidfile={workdir / 'turnserver.pid'}",
            "log-file=stdout",
            "simple-log",
            "",
        ]
    )


@asynccontextmanager
async def shipped_coturn(workdir: Path) -> AsyncIterator[tuple[int, str, str]]:
    """coturn from the shipped config; yields (port, username, password)."""
    port, secret = free_udp_tcp_port(), secrets.token_urlsafe(24)
    config = workdir / "turnserver.conf"
    config.write_text(shipped_config(workdir, port, secret))
    (turn,) = ice_servers(
        stun_urls=(),
        turn_urls=(f"turn:127.0.0.1:{port}?transport=udp",),
        turn_secret=secret,
        peer_id="attacker-edge",
        now=time.time(),
        ttl_s=600,
    )
    assert turn.username is not None and turn.credential is not None
    log = (workdir / "coturn.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        "turnserver", "-c", str(config), stdout=log, stderr=subprocess.STDOUT
    )
    try:

        async def listening() -> bool:
            assert proc.returncode is None, (workdir / "coturn.log").read_text()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, what="coturn listening with the shipped config")
        yield port, turn.username, turn.credential
    finally:
        if proc.returncode is None:
            proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(proc.wait(), 10)
        log.close()


class _Received(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.data: asyncio.Queue[bytes] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.data.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)


async def test_turn_refuses_private_loopback_and_metadata_peers(tmp_path: Path) -> None:
    async with shipped_coturn(tmp_path) as (port, username, password):
        relay, client = await create_turn_endpoint(
            _Received, server_addr=("127.0.0.1", port), username=username, password=password
        )
        loop = asyncio.get_running_loop()
        listener, control = await loop.create_datagram_endpoint(
            _Received, local_addr=(CONTROL_PEER, 0)
        )
        try:
            for target in FORBIDDEN:
                relay.sendto(b"GET /latest/meta-data/ HTTP/1.0\r\n\r\n", target)
                refused = await asyncio.wait_for(client.errors.get(), 30)
                assert isinstance(refused, TransactionFailed), refused
                assert refused.response.error_code == 403, (target, refused)
            # The control: a peer the config allows gets the relayed datagram.
            relay.sendto(b"hello peer", listener.get_extra_info("sockname"))
            assert await asyncio.wait_for(control.data.get(), 30) == b"hello peer"
        finally:
            relay.close()
            listener.close()


async def test_turn_refuses_tcp_relays(tmp_path: Path) -> None:
    """The TCP variant: a TCP allocation would let TURN open connections to HTTP
    services (metadata, signaling). ``no-tcp-relay``: 442, no allocation."""
    async with shipped_coturn(tmp_path) as (port, username, password):
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            lambda: TurnClientTcpProtocol(
                ("127.0.0.1", port),
                username=username,
                password=password,
                lifetime=600,
                channel_refresh_time=300,
            ),
            "127.0.0.1",
            port,
        )
        try:
            request = stun.Message(
                message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST
            )
            request.attributes["LIFETIME"] = 600
            request.attributes["REQUESTED-TRANSPORT"] = 6 << 24  # TCP
            with pytest.raises(TransactionFailed) as refused:
                await protocol.request_with_retry(request)
            assert refused.value.response.error_code == 442
        finally:
            transport.close()
