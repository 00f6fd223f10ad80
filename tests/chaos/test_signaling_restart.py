"""Signaling dies (SIGKILL) during traffic and comes back: streams in flight finish
(data channels never pass through signaling), new requests keep working, and both peers
reconnect to the new signaling process by themselves."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import running_stack
from tests.support.wait import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


def signaling_peers(url: str) -> tuple[int, int]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        body = json.loads(resp.read())
        return int(body["workers"]), int(body["edges"])


async def test_signaling_killed_mid_stream_and_restarted(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        cfg = stack.config
        health = f"http://{cfg.host}:{cfg.signaling_port}/healthz"
        body = {
            "model": "cloud",
            "stream": True,
            "max_tokens": 120,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Tell me about lighthouses."}],
        }
        async with aiohttp.ClientSession() as session:
            resp = await session.post(f"{stack.edge_url}/v1/chat/completions", json=body)
            lines = resp.content.__aiter__()
            while b'"content"' not in await anext(lines):
                pass
            stack.procs["signaling"].send_signal(signal.SIGKILL)
            stack.procs["signaling"].wait(10)
            rest = [line async for line in lines]
            assert b"data: [DONE]" in b"".join(rest), "the stream in flight finished"
            assert not any(b'"error"' in line for line in rest), "the stream must not notice"

            # While signaling is down, the warm link still serves new cloud requests.
            quick = {**body, "stream": False, "max_tokens": 8}
            async with session.post(f"{stack.edge_url}/v1/chat/completions", json=quick) as r:
                assert r.status == 200 and r.headers["X-Tandem-Served-By"] == "cloud"

            await asyncio.to_thread(stack.start_signaling)
            restarted = time.monotonic()
            async with session.post(f"{stack.edge_url}/v1/chat/completions", json=quick) as r:
                assert r.status == 200 and r.headers["X-Tandem-Served-By"] == "cloud"
            # Both peers find the new signaling process by themselves (jittered backoff).

            async def both_back() -> bool:
                return await asyncio.to_thread(signaling_peers, health) == (1, 1)

            await eventually(
                both_back,
                timeout_s=120,
                what="worker and edge registered with the restarted signaling",
            )
            print(f"\npeers re-registered {time.monotonic() - restarted:.1f} s after the restart")
