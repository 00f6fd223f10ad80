"""Issue 13, item 3: no plaintext to signaling across networks.

Before this change there was no ``wss://`` anywhere: a peer's bearer token (on the
upgrade request), its TURN credentials and everything it relayed crossed the network
readable by anyone on the path, and an impostor answering on signaling's address
received the token on the first connect. Now signaling serves TLS itself, peers verify
its certificate (system CAs or ``--ca-file``), and a plaintext URL to another host is
refused at startup. The certificates here come from a CA the test makes.
"""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from devstack.stack import Stack, StackConfig, free_port
from link import SignalingClient
from shared.messages import Role
from signaling.app import create_app
from signaling.settings import SignalingSettings
from signaling.tls import server_ssl_context
from tests.security.support import metric
from tests.support.apps import SECRET, serving, token
from tests.support.onpath import threaded_proxy
from tests.support.tls import CertAuthority
from tests.support.wait import eventually

PROMPT = "Describe the PAPAYA-7731 protocol in one line."
JWT_HEADER = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # every token begins with it


def tls_app(cert_dir: CertAuthority) -> tuple[web.Application, ssl.SSLContext]:
    cert = cert_dir.issue(("127.0.0.1", "localhost"))
    settings = SignalingSettings(secret=SecretStr(SECRET), tls_cert=cert.cert, tls_key=cert.key)
    context = server_ssl_context(settings)
    assert context is not None
    return create_app(settings), context


async def test_an_impostor_signaling_never_sees_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack: answer on signaling's address with a certificate the peer's CA did
    not sign (a hijacked DNS name or route), and collect the bearer token of every peer
    that connects. Before: peers spoke ws:// and sent it to whoever answered."""
    real = CertAuthority.make(tmp_path / "real", "Tandem CA")
    impostor = CertAuthority.make(tmp_path / "impostor", "Tandem CA")  # same name, other key
    app, context = tls_app(impostor)
    async with serving(app, ssl_context=context) as port:
        client = SignalingClient(
            f"wss://127.0.0.1:{port}/v1/signal",
            token(Role.EDGE, "edge-1"),
            ca_file=real.ca_file,
            reconnect_min_s=0.05,
            reconnect_max_s=0.2,
        )
        client.start()
        try:
            await eventually(
                lambda: "certificate verify failed" in (client.last_error or ""),
                what="the peer refusing the impostor's certificate",
            )
            assert not client.connected
        finally:
            await client.aclose()
        edges = '{role="edge"}'
        seen = await metric(
            port, "tandem_signaling_connections_total", edges, ca_file=impostor.ca_file
        )
        failures = await metric(
            port,
            "tandem_signaling_auth_failures_total",
            '{reason="missing_token"}',
            ca_file=impostor.ca_file,
        )
        assert seen == 0 and failures == 0, "no upgrade request (no token) ever reached it"
    assert "--ca-file" in (client.last_error or "")
    assert any(r.levelno == logging.ERROR and "verify failed" in r.message for r in caplog.records)

    # The same peer, given the genuine signaling, connects.
    app, context = tls_app(real)
    async with serving(app, ssl_context=context) as port:
        client = SignalingClient(
            f"wss://127.0.0.1:{port}/v1/signal", token(Role.EDGE, "edge-1"), ca_file=real.ca_file
        )
        client.start()
        try:
            await client.wait_connected(30)
            assert client.peer_id == "edge-1" and client.last_error is None
        finally:
            await client.aclose()


def post_json(url: str, body: bytes) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=300) as resp:
        return {k.lower(): v for k, v in resp.headers.items()}, resp.read()


@pytest.mark.e2e
def test_edge_and_worker_over_wss_and_the_wire_shows_nothing(tmp_path: Path) -> None:
    """The attack: watch the network between an edge and signaling (here a proxy on
    the path records every byte) while the edge escalates over the relay. Before: the
    token, TURN credentials and the relayed prompt were all there in clear. Now:
    real processes over wss:// (the test's CA), a real escalated answer, and the
    recording holds TLS records only."""
    ca = CertAuthority.make(tmp_path / "ca")
    cert = ca.issue(("127.0.0.1", "localhost"))
    config = StackConfig(
        signaling_port=free_port(),
        worker_port=free_port(),
        edge_port=free_port(),
        log_dir=tmp_path / "logs",
        log_level="DEBUG",
        tls_cert=cert.cert,
        tls_key=cert.key,
        ca_file=ca.ca_file,
    )
    with threaded_proxy(config.signaling_port) as wire:
        config.edge_args = [
            "--signaling",
            f"wss://127.0.0.1:{wire.port}/v1/signal",  # the edge's path runs through it
            "--force-relay",
        ]
        stack = Stack(config)
        try:
            stack.start()
            assert stack.signaling_url.startswith("wss://")
            body = (
                b'{"model": "cloud", "max_tokens": 8, "temperature": 0, '
                b'"messages": [{"role": "user", "content": "' + PROMPT.encode() + b'"}]}'
            )
            headers, answer = post_json(f"{stack.edge_url}/v1/chat/completions", body)
            assert headers["x-tandem-served-by"] == "cloud"
            assert headers["x-tandem-path"] == "relay"
            assert b'"content"' in answer
            _refuses_plaintext_and_old_tls(config.signaling_port, ca.ca_file)
        except BaseException:
            for log in sorted((tmp_path / "logs").glob("*.log")):
                print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
            raise
        finally:
            stack.stop()
        seen = bytes(wire.to_server) + bytes(wire.to_client)
    assert seen[:2] == b"\x16\x03", "the recording starts with a TLS handshake"
    assert len(wire.to_server) > 1000 and len(wire.to_client) > 1000
    for secret in (b"Bearer", JWT_HEADER, PROMPT.encode(), b"PAPAYA-7731", b"relay_data"):
        assert secret not in seen


def _refuses_plaintext_and_old_tls(port: int, ca_file: Path) -> None:
    """Signaling answers neither plaintext HTTP nor TLS older than 1.3 (its default)."""
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
    old = ssl.create_default_context(cafile=str(ca_file))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(OSError):  # ssl.SSLError and URLError both are
        urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=10, context=old)
    modern = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=modern) as resp:
        assert resp.status == 200


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv",
    [
        ["edge_agent", "serve"],
        ["cloud_worker", "serve"],
        ["edge_agent", "netcheck"],
    ],
    ids=["edge", "worker", "netcheck"],
)
def test_plaintext_signaling_to_another_host_is_refused_at_startup(argv: list[str]) -> None:
    """The attack: configure (or trick an operator into) ``ws://`` to a remote
    signaling, so the token crosses the network readable. Before: accepted silently."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    secret_token = token(Role.EDGE, "pi-1")
    env["TANDEM_TOKEN"] = secret_token
    done = subprocess.run(
        [sys.executable, "-m", *argv, "--signaling", "ws://192.0.2.10:8765/v1/signal"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--insecure-signaling" in done.stderr and "wss://" in done.stderr
    assert secret_token not in done.stderr + done.stdout
