"""A worker that stops answering (frozen with SIGSTOP: no FIN, no SCTP abort, exactly
what a hung host or a pulled cable looks like) is noticed by the edge's heartbeat, not
after aiortc's ~27 s of consent checks; the in-flight stream does not hang: with no
other worker, the local model finishes it; and the edge links up again once the worker
is back."""

from __future__ import annotations

import json
import signal
import time

import aiohttp
import pytest

from devstack.stack import Stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


async def cloud_ready(session: aiohttp.ClientSession, stack: Stack) -> bool:
    async with session.get(f"{stack.edge_url}/healthz") as resp:
        return bool((await resp.json())["cloud"] == "ready")


async def test_a_frozen_worker_is_detected_and_its_stream_finishes_locally(stack: Stack) -> None:
    worker = stack.procs["worker"]
    assert stack.config.log_dir is not None
    edge_log = stack.config.log_dir / "edge.log"
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
            events = [line[6:].strip() async for line in lines if line.startswith(b"data: ")]
            ended_after = time.monotonic() - frozen_at
            assert events[-1] == b"[DONE]"
            chunks = [json.loads(e) for e in events if e.startswith(b"{")]
            assert not [c for c in chunks if "error" in c], "the stream must survive the freeze"
            finishes = [ch["finish_reason"] for c in chunks for ch in c.get("choices", [])]
            assert finishes[-1] in ("stop", "length")
            async with session.get(f"{stack.edge_url}/metrics") as metrics:
                assert 'tandem_edge_failovers_total{to="local"} 1.0' in await metrics.text()
            # The heartbeat closed the link (aiortc's consent checks would take ~27 s),
            # and with it the cloud route until the worker answers again.
            assert "silent for" in edge_log.read_text(), "the edge's heartbeat noticed"
            assert not await cloud_ready(session, stack)
        finally:
            worker.send_signal(signal.SIGCONT)
        await eventually(
            lambda: cloud_ready(session, stack), timeout_s=120, what="the edge linked again"
        )
        print(f"stream finished {ended_after:.1f} s after the freeze")
