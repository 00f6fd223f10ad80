"""A worker that stops answering (frozen with SIGSTOP: no FIN, no SCTP abort, exactly
what a hung host or a pulled cable looks like) is noticed within seconds, not aiortc's
~27 s; the in-flight stream does not hang: with no other worker, the local model
finishes it; and the edge links up again once the worker is back."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import aiohttp
import pytest

from devstack.stack import Stack

pytestmark = pytest.mark.e2e


async def cloud_state(session: aiohttp.ClientSession, stack: Stack) -> str:
    async with session.get(f"{stack.edge_url}/healthz") as resp:
        return str((await resp.json())["cloud"])


async def wait_cloud(
    session: aiohttp.ClientSession, stack: Stack, ready: bool, limit_s: float
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if (await cloud_state(session, stack) == "ready") is ready:
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise AssertionError(f"cloud {'never came back' if ready else 'still ready'} after {limit_s} s")


async def test_a_frozen_worker_is_detected_and_its_stream_finishes_locally(stack: Stack) -> None:
    worker = stack.procs["worker"]
    body = {
        "model": "cloud",
        "stream": True,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}],
    }
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{stack.edge_url}/v1/chat/completions", json=body)
        assert resp.status == 200
        lines = resp.content.__aiter__()
        while b'"content"' not in await anext(lines):  # the stream is flowing
            pass
        worker.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            events = []
            async with asyncio.timeout(20):
                async for line in lines:
                    if line.startswith(b"data: "):
                        events.append(line[6:].strip())
            ended_after = time.monotonic() - frozen_at
            assert events[-1] == b"[DONE]"
            chunks = [json.loads(e) for e in events if e.startswith(b"{")]
            assert not [c for c in chunks if "error" in c], "the stream must survive the freeze"
            finishes = [ch["finish_reason"] for c in chunks for ch in c.get("choices", [])]
            assert finishes[-1] in ("stop", "length")
            async with session.get(f"{stack.edge_url}/metrics") as metrics:
                assert 'tandem_edge_failovers_total{to="local"} 1.0' in await metrics.text()
            not_ready_after = await wait_cloud(session, stack, ready=False, limit_s=20)
        finally:
            worker.send_signal(signal.SIGCONT)
        back_after = await wait_cloud(session, stack, ready=True, limit_s=60)
        print(
            f"stream finished {ended_after:.1f} s after the freeze; back {back_after:.1f} s later"
        )
        assert not_ready_after >= 0
