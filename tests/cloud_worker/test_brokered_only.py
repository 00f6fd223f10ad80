"""A worker accepts sessions only as signaling brokers them.

Its one way in is the offer signaling forwards on the worker's own authenticated
connection (signaling picks the worker and stamps the real edge id: see
``tests/signaling/test_handlers.py`` for spoofed ids, answers for sessions the worker was
not given, wrong-role messages, and ``tests/signaling/test_relay_table.py`` for relay sessions
bound to their pair). This test covers the other side: the worker's own HTTP port offers
nothing to open a session with, so an edge that knows the worker's address gets no
further than its health check.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.edge import edge_pool, linked_worker

pytestmark = pytest.mark.e2e


async def test_worker_http_port_opens_no_sessions() -> None:
    async with edge_pool() as edge, linked_worker(edge.pool, edge.url, "worker-b") as port:
        base = f"http://127.0.0.1:{port}"
        offer = {"type": "offer", "sdp": "v=0", "session_id": "s1"}
        async with aiohttp.ClientSession() as http:
            for path in ("/v1/signal", "/v1/offer", "/offer", "/v1/relay", "/v1/chat/completions"):
                async with http.post(base + path, json=offer) as resp:
                    assert resp.status in (404, 405), path
                async with http.get(base + path) as resp:
                    assert resp.status in (404, 405), path
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
                assert (await resp.json())["sessions"] == 1, "the brokered session alone"
