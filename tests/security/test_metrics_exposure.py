"""Issue 13, item 10 (in part): ``/metrics`` is not served to the network by default.

The attack: with signaling on ``0.0.0.0`` (as the deploy docs had it), anyone who could
reach the peers' port could read ``/metrics``: how many peers there are, how
authentication is failing, how busy the relay is. Now a non-loopback listener serves no
``/metrics`` unless a separate ``--metrics-host`` is given; ``/healthz`` (liveness and
peer counts, for load balancers) stays on the main listener.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.security.auth_support import free_port, signaling_server


async def status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        return response.status


async def test_a_network_facing_listener_does_not_serve_metrics(tmp_path: Path) -> None:
    async with (
        signaling_server(tmp_path, "--host", "0.0.0.0") as server,
        aiohttp.ClientSession() as session,
    ):
        assert await status(session, f"{server.http}/metrics") == 404
        assert await status(session, f"{server.http}/healthz") == 200
        assert "/metrics is not served on 0.0.0.0" in server.log()


async def test_metrics_move_to_their_own_listener(tmp_path: Path) -> None:
    metrics_port = free_port()
    async with (
        signaling_server(
            tmp_path,
            "--host",
            "0.0.0.0",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
        ) as server,
        aiohttp.ClientSession() as session,
    ):
        assert await status(session, f"{server.http}/metrics") == 404
        side = f"http://127.0.0.1:{metrics_port}"
        assert await status(session, f"{side}/metrics") == 200
        assert await status(session, f"{side}/healthz") == 200
        assert await status(session, f"{side}/v1/signal") == 404  # peers do not connect here


async def test_a_loopback_listener_keeps_serving_metrics(tmp_path: Path) -> None:
    """A guard: the quickstart (loopback) keeps /metrics where it always was."""
    async with signaling_server(tmp_path) as server, aiohttp.ClientSession() as session:
        assert await status(session, f"{server.http}/metrics") == 200
