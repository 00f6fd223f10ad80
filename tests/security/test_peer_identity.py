"""Issue 13, item 10 (in part): two devices with one peer id must not flap.

The attack (or the mistake): two devices configured with the same token. Before the
fix, each connection replaced the other: the two knocked each other off about every
0.5 s (their reconnect backoff), forever, and every offer in flight was lost each time.
Now the live holder keeps the id and the newcomer is refused (close 4009, a reason, a
log line on both sides); only a holder that no longer answers a ping is replaced.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from link import SignalingClient
from shared.messages import Role
from tests.security.auth_support import bearer, signaling_server, token
from tests.signaling.support import Peer
from tests.support.wait import eventually


async def metric(session: aiohttp.ClientSession, base: str, series: str) -> float:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return next(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(series))


async def test_a_second_device_with_the_same_peer_id_is_refused_while_the_first_is_live(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared_token = token(Role.EDGE, "pi-1")
    async with (
        signaling_server(tmp_path) as server,
        aiohttp.ClientSession() as session,
    ):
        first = SignalingClient(server.ws, shared_token, reconnect_min_s=0.05, reconnect_max_s=0.2)
        second = SignalingClient(server.ws, shared_token, reconnect_min_s=0.05, reconnect_max_s=0.2)
        try:
            first.start()
            await first.wait_connected(30)
            with caplog.at_level(logging.ERROR, logger="link.signaling_backoff"):
                second.start()
                refused = 'tandem_signaling_closes_total{reason="peer_id_in_use"}'

                async def refused_thrice() -> bool:
                    return await metric(session, server.http, refused) >= 3

                await eventually(refused_thrice, what="the second device refused three times")
            assert first.connected and not second.connected
            edges = 'tandem_signaling_connections_total{role="edge"}'
            assert await metric(session, server.http, edges) == 1  # the first never dropped
            assert "peer id is connected from elsewhere" in caplog.text
            assert server.log().count("refused a second edge connection as pi-1") >= 3
        finally:
            await second.aclose()
            await first.aclose()


async def test_a_silent_holder_of_the_peer_id_is_replaced(tmp_path: Path) -> None:
    """A connection that answers no ping (a device whose network died before signaling
    noticed) does not keep its id: the device coming back takes it over."""
    shared_token = token(Role.WORKER, "gpu-1")
    async with (
        signaling_server(tmp_path, "--takeover-probe-s", "0.5") as server,
        aiohttp.ClientSession() as session,
        session.ws_connect(server.ws, headers=bearer(shared_token), autoping=False) as silent,
    ):
        await silent.receive(timeout=10)  # its Welcome; from now on it reads (pongs) nothing
        back = SignalingClient(server.ws, shared_token, reconnect_min_s=0.05, reconnect_max_s=0.2)
        try:
            back.start()
            await back.wait_connected(30)
            assert await Peer(silent).closed_with() == 1000
            workers = 'tandem_signaling_peers{role="worker"}'
            assert await metric(session, server.http, workers) == 1
        finally:
            await back.aclose()
