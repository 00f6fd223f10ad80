"""A real coturn on 127.0.0.1, started by the test that needs it (no root, no namespaces).

It listens on a free port with its own config file, authenticates with the TURN REST
scheme signaling uses (``static-auth-secret``), relays between loopback peers (which
coturn refuses by default), and is stopped by its process handle, never by name.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from link.probe import turn_allocate
from shared.messages import IceServer
from signaling.turn_credentials import ice_servers
from tests.support.wait import eventually

__all__ = ["Coturn", "coturn_on_loopback", "free_udp_tcp_port", "needs_coturn"]

needs_coturn = pytest.mark.skipif(
    shutil.which("turnserver") is None,
    reason="coturn's turnserver is not installed (Debian package 'coturn'; CI installs it)",
)


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str

    def ice_servers(self, peer_id: str, *, transport: str = "udp") -> tuple[IceServer, ...]:
        """What signaling would hand ``peer_id``: this TURN server, with fresh credentials."""
        return ice_servers(
            stun_urls=(),
            turn_urls=(f"turn:127.0.0.1:{self.port}?transport={transport}",),
            turn_secret=self.secret,
            peer_id=peer_id,
            now=time.time(),
            ttl_s=600,
        )


@asynccontextmanager
async def coturn_on_loopback(workdir: Path) -> AsyncIterator[Coturn]:
    """coturn on 127.0.0.1, ready to allocate; stopped (and its log kept) on exit."""
    server = Coturn(port=free_udp_tcp_port(), secret=secrets.token_urlsafe(24))
    config = workdir / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={server.port}",
                "use-auth-secret",
                f"static-auth-secret={server.secret}",
                "realm=tandem.test",
                "allow-loopback-peers",
                "fingerprint",
                "no-tls",
                "no-dtls",
                "no-cli",
                "no-multicast-peers",
                f"userdb={workdir / 'turndb'}",
                f"pidfile={workdir / 'turnserver.pid'}",
                "log-file=stdout",
                "simple-log",
            ]
        )
        + "\n"
    )
    log = (workdir / "coturn.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        "turnserver",
        "-c",
        str(config),
        "--no-cli",
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        username, password = _credentials(server)

        async def allocates() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"coturn exited ({proc.returncode}): see {log.name}")
            relayed = await turn_allocate(
                "127.0.0.1",
                server.port,
                username=username,
                password=password,
                transport="udp",
                timeout_s=1.0,
            )
            return relayed is not None

        await eventually(allocates, timeout_s=30, what="coturn allocating on loopback")
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()


def _credentials(server: Coturn) -> tuple[str, str]:
    (turn,) = server.ice_servers("probe")
    assert turn.username is not None and turn.credential is not None
    return turn.username, turn.credential
