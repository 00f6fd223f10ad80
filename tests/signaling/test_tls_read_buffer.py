"""``--tls-read-buffer-bytes``: each wss:// peer's TLS read buffer is small and explicit.

Before: asyncio gave every TLS connection a resident 256 KiB read buffer, so an idle
wss:// peer cost signaling ~280 KB (10,000 of them: 2.8 GB, past the unit's 1 GB).
Now ``serve`` sets it (32 KiB by default). These tests run signaling at the smallest
allowed size (one TLS record, 16 KiB), where a frame at ``max_frame_bytes`` and bulk
relay data both span many reads, and check that the server's own TLS connections use it.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import gc
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from devstack.stack import free_port
from link import SignalingClient
from shared.codec import decode, encode
from shared.messages import GenerateRequest, Offer, Register, Role, SamplingParams, Welcome
from signaling.__main__ import main
from signaling.app import create_app
from signaling.settings import SignalingSettings
from signaling.tls import MIN_TLS_READ_BUFFER_BYTES, server_ssl_context, set_tls_read_buffer
from tests.support.apps import SECRET, serving, token
from tests.support.relay import relay_worker
from tests.support.tls import CertAuthority, ServerCert
from tests.support.wait import eventually

SMALLEST = MIN_TLS_READ_BUFFER_BYTES


@pytest.fixture
def smallest_buffer() -> Iterator[None]:
    """The process-wide setting ``serve`` makes, put back afterwards."""
    previous = set_tls_read_buffer(SMALLEST)
    assert previous is not None, "this Python's asyncio has SSLProtocol.max_size"
    try:
        yield
    finally:
        asyncio.sslproto.SSLProtocol.max_size = previous


@pytest.fixture
def cert(tmp_path: Path) -> tuple[ServerCert, Path]:
    ca = CertAuthority.make(tmp_path / "ca")
    return ca.issue(("127.0.0.1",)), ca.ca_file


def server_read_buffers() -> list[int]:
    """The read buffer sizes of this process's live server-side TLS connections."""
    return [
        len(obj._ssl_buffer)  # type: ignore[attr-defined]  # asyncio's own, undocumented
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.sslproto.SSLProtocol)
        and obj._server_side
        and obj._app_transport is not None
        and not obj._app_transport.is_closing()
    ]


async def wait_registered(port: int, ca_file: Path) -> None:
    """Until signaling (over https) has a worker registered."""
    context = ssl.create_default_context(cafile=str(ca_file))
    async with aiohttp.ClientSession() as http:

        async def registered() -> bool:
            async with http.get(f"https://127.0.0.1:{port}/healthz", ssl=context) as resp:
                return bool((await resp.json())["workers"] >= 1)

        await eventually(registered, what="the worker registered")


def bearer(role: Role, peer_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, peer_id)}"}


async def test_a_largest_frame_crosses_the_smallest_buffer(
    smallest_buffer: None, cert: tuple[ServerCert, Path]
) -> None:
    server_cert, ca_file = cert
    settings = SignalingSettings(
        secret=SecretStr(SECRET), tls_cert=server_cert.cert, tls_key=server_cert.key
    )
    context = server_ssl_context(settings)
    client_context = ssl.create_default_context(cafile=str(ca_file))
    async with (
        serving(create_app(settings), ssl_context=context) as port,
        aiohttp.ClientSession() as http,
    ):
        url = f"wss://127.0.0.1:{port}/v1/signal"
        worker = await http.ws_connect(
            url, headers=bearer(Role.WORKER, "w"), ssl=client_context, max_msg_size=1 << 20
        )
        edge = await http.ws_connect(url, headers=bearer(Role.EDGE, "e"), ssl=client_context)
        for ws in (worker, edge):
            assert isinstance(decode((await ws.receive(timeout=30)).data), Welcome)
        assert sorted(server_read_buffers()) == [SMALLEST, SMALLEST]

        await worker.send_bytes(encode(Register(models=("m",), capacity=4)))
        sdp = "v=0\r\n" + "a=x" * 20_000
        overhead = len(encode(Offer(session_id="big", sdp=sdp, model="m"))) - len(sdp)
        sdp = (sdp * 4)[: settings.max_frame_bytes - overhead]
        offer = Offer(session_id="big", sdp=sdp, model="m")
        frame = encode(offer)
        assert len(frame) == settings.max_frame_bytes >= 4 * SMALLEST
        await wait_registered(port, ca_file)
        await edge.send_bytes(frame)
        got = decode((await worker.receive(timeout=30)).data, max_frame_bytes=1 << 20)
        assert isinstance(got, Offer), got
        assert got.sdp == offer.sdp and got.session_id == "big" and got.peer_id == "e"
        assert sorted(server_read_buffers()) == [SMALLEST, SMALLEST], "never grown"
        await worker.close()
        await edge.close()


async def test_bulk_relay_data_over_wss_with_the_smallest_buffer(
    smallest_buffer: None, cert: tuple[ServerCert, Path]
) -> None:
    server_cert, ca_file = cert
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        tls_cert=server_cert.cert,
        tls_key=server_cert.key,
        relay_bytes_per_s=64 * 1024 * 1024,  # pacing is not what this test is about
    )
    async with serving(create_app(settings), ssl_context=server_ssl_context(settings)) as port:
        url = f"wss://127.0.0.1:{port}/v1/signal"
        relaying = relay_worker(url, capacity=1, max_frame_bytes=16384, ca_file=ca_file)
        edge = SignalingClient(url, token(Role.EDGE, "edge-1"), ca_file=ca_file)
        relaying.client.start()
        edge.start()
        try:
            await relaying.client.wait_connected(30)
            await edge.wait_connected(30)
            await wait_registered(port, ca_file)
            edge_link, _ = await edge.relays.open(
                "bulk", model="", timeout_s=30, max_frame_bytes=16384
            )
            worker_link = await asyncio.wait_for(relaying.accepted.get(), 30)
            assert SMALLEST in server_read_buffers()
            for i in range(8):  # ~2.4 MB through signaling, in 16 KiB relay frames
                request = GenerateRequest(
                    request_id=f"bulk-{i}",
                    prompt=os.urandom(150_000).hex(),
                    params=SamplingParams(max_tokens=1),
                )
                await edge_link.send(request)
                assert await asyncio.wait_for(worker_link.recv(), 60) == request
            assert set(server_read_buffers()) == {SMALLEST}, "never grown"
        finally:
            await edge.aclose()
            await relaying.client.aclose()


def test_the_buffer_has_a_lower_bound(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="tls_read_buffer_bytes"):
        SignalingSettings(tls_read_buffer_bytes=SMALLEST - 1)
    assert SignalingSettings(tls_read_buffer_bytes=SMALLEST).tls_read_buffer_bytes == SMALLEST
    with pytest.raises(ValueError, match="at least 16384"):
        set_tls_read_buffer(4096)
    for key in list(os.environ):
        if key.startswith("TANDEM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TANDEM_SECRET", SECRET)
    assert main(["serve", "--tls-read-buffer-bytes", "4096"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tls" in err.lower() and "16384" in err


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "ws"])
def test_serve_sets_it_with_tls_only(tmp_path: Path, tls: bool) -> None:
    """The real command: with --tls-cert it sets the buffer (and says so); without TLS
    the process's asyncio is left alone, and the setting is said to do nothing."""
    port = free_port()
    argv = [sys.executable, "-m", "signaling", "serve", "--port", str(port)]
    argv += ["--tls-read-buffer-bytes", "20480"]
    if tls:
        ca = CertAuthority.make(tmp_path / "ca")
        issued = ca.issue(("127.0.0.1",))
        argv += ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env |= {"TANDEM_SECRET": SECRET, "TANDEM_LOG_LEVEL": "INFO"}
    log = tmp_path / "signaling.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        asyncio.run(
            eventually(
                lambda: "signaling listening on" in log.read_text() or proc.poll() is not None,
                timeout_s=120,
                what="signaling started",
            )
        )
        assert proc.poll() is None, log.read_text()
        text = log.read_text()
        assert ("TLS read buffer: 20480 bytes per connection" in text) is tls, text
        assert ("--tls-read-buffer-bytes has no effect without --tls-cert" in text) is not tls
    finally:
        proc.terminate()
        proc.wait(30)
