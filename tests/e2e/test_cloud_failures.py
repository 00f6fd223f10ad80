"""A cloud that fails before the first token, in each way it can: the worker refuses
(an error frame), stalls (frozen), or its link dies. An ``auto`` request then answers
locally and says so; a forced ``cloud`` request gets 503; no request makes more than
``--max-failovers + 1`` cloud attempts (counted by the worker itself); and tokens the
local model finishes after a failover are counted as local, not charged to the cloud.

Real processes (signaling, a worker, the edge), the real model, real WebRTC on loopback.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

HARD = [{"role": "user", "content": "Prove that there are infinitely many prime numbers."}]
"""A prompt the router sends to the cloud (reason math), so ``auto`` means cloud here."""
LONG = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
LABEL = re.compile(r'(\w+)="([^"]*)"')
NOTE = re.compile(rb"^: x-tandem-failover to=(\w+) after_tokens=(\d+)$")


def chat_url(stack: Stack) -> str:
    return f"{stack.edge_url}/v1/chat/completions"


def scrape(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text endpoint (0 when absent)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(f"{name}{{") and dict(LABEL.findall(series)) == labels:
            return float(value)
    return 0.0


def worker_metric(stack: Stack, name: str, **labels: str) -> float:
    return scrape(stack.worker_health_url.replace("/healthz", "/metrics"), name, **labels)


def edge_metric(stack: Stack, name: str, **labels: str) -> float:
    return scrape(f"{stack.edge_url}/metrics", name, **labels)


def worker_active(stack: Stack) -> int:
    with urllib.request.urlopen(stack.worker_health_url, timeout=5) as resp:
        return int(json.loads(resp.read())["active_streams"])


@dataclass
class Streamed:
    """A streamed chat completion as its client saw it."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    pieces: int = 0
    failovers: list[tuple[str, int]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: str | None = None


async def stream(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    out: Streamed,
    progressed: asyncio.Event | None = None,
) -> Streamed:
    """Read an SSE answer into ``out``; set ``progressed`` after the third piece."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(url, json=body) as resp:
        out.status, out.headers = resp.status, dict(resp.headers)
        async for raw in resp.content:
            line = raw.strip()
            if note := NOTE.match(line):
                out.failovers.append((note[1].decode(), int(note[2])))
            elif line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    out.error = json.dumps(chunk["error"])
                for choice in chunk.get("choices", []):
                    if piece := choice["delta"].get("content"):
                        out.text += piece
                        out.pieces += 1
                        if out.pieces == 3 and progressed is not None:
                            progressed.set()
                out.usage = chunk.get("usage") or out.usage
    return out


async def test_refused_attempts_are_bounded_then_auto_is_local_and_cloud_is_503(
    tmp_path: Path,
) -> None:
    """The worker answers every attempt with an error frame (overloaded: the edge's one
    stream slot is held by a long stream)."""
    edge_args = ["--max-failovers", "2"]
    worker_args = ["--max-streams-per-peer", "1"]
    refused = "tandem_worker_streams_total"
    with running_stack(tmp_path, edge_args=edge_args, worker_args=worker_args) as stack:
        async with aiohttp.ClientSession() as http:
            held = Streamed()
            holding = asyncio.Event()
            holder = asyncio.create_task(
                stream(
                    http,
                    chat_url(stack),
                    {"model": "cloud", "max_tokens": 1800, "messages": LONG},
                    held,
                    holding,
                )
            )
            await holding.wait()  # the worker's one slot for this edge is taken
            before = worker_metric(stack, refused, result="refused")

            body = {"model": "auto", "max_tokens": 8, "messages": HARD}
            async with http.post(chat_url(stack), json=body) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
                assert resp.headers["X-Tandem-Served-By"] == "local"
                assert resp.headers["X-Tandem-Route-Reason"] == "cloud-unavailable"
                assert resp.headers["X-Tandem-Failovers"] == "3"  # cloud, cloud, then local
            assert answer["choices"][0]["message"]["content"]
            await eventually(  # counted as the refusal is handed to the channel
                lambda: worker_metric(stack, refused, result="refused") - before >= 3,
                what="3 refusals counted",
            )
            assert worker_metric(stack, refused, result="refused") - before == 3

            body = {"model": "cloud", "max_tokens": 8, "messages": HARD}
            async with http.post(chat_url(stack), json=body) as resp:
                error = (await resp.json())["error"]
                assert resp.status == 503 and error["code"] == "cloud_unavailable"
                assert "3 cloud attempt(s) failed" in error["message"]
                assert resp.headers["X-Tandem-Failovers"] == "2"  # between the 3 attempts
            await eventually(  # counted as the refusal is handed to the channel
                lambda: worker_metric(stack, refused, result="refused") - before >= 6,
                what="6 refusals counted",
            )
            assert worker_metric(stack, refused, result="refused") - before == 6
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)


async def test_a_stalled_worker_costs_a_bounded_wait_then_auto_answers_locally(
    tmp_path: Path,
) -> None:
    """The worker is frozen (SIGSTOP): linked as far as the edge knows (its heartbeat
    allows a long silence here), it never sends a first token."""
    edge_args = [
        "--first-token-timeout-s", "1", "--dead-after-s", "600", "--max-failovers", "1",
    ]  # fmt: skip
    with running_stack(tmp_path, edge_args=edge_args) as stack:
        worker = stack.procs["worker"]
        worker.send_signal(signal.SIGSTOP)
        try:
            async with aiohttp.ClientSession() as http:
                body = {"model": "auto", "max_tokens": 8, "messages": HARD}
                out = await stream(http, chat_url(stack), body, Streamed())
        finally:
            worker.send_signal(signal.SIGCONT)
    assert out.status == 200 and out.error is None and out.text
    assert out.headers["X-Tandem-Served-By"] == "local"
    assert out.headers["X-Tandem-Route-Reason"] == "cloud-unavailable"
    assert out.failovers == [("cloud", 0), ("local", 0)], "two stalled attempts, then here"
    assert out.usage is not None and out.usage["completion_tokens"] == 8


async def test_a_dead_link_before_the_first_token_and_mid_stream(tmp_path: Path) -> None:
    """The worker is killed while one stream (forced cloud) is generating and another
    (auto) waits for the model on it: the first finishes locally from where it was, the
    second is answered locally from the start, and the metrics count every token where
    it was generated."""
    edge_args = ["--heartbeat-s", "0.5", "--dead-after-s", "3", "--failover-wait-s", "1"]
    with running_stack(tmp_path, edge_args=edge_args) as stack:
        completion = "tandem_edge_tokens_total"
        cloud_before = edge_metric(stack, completion, served_by="cloud", kind="completion")
        local_before = edge_metric(stack, completion, served_by="local", kind="completion")
        async with aiohttp.ClientSession() as http:
            first, second = Streamed(), Streamed()
            generating = asyncio.Event()
            a = asyncio.create_task(
                stream(
                    http,
                    chat_url(stack),
                    {"model": "cloud", "max_tokens": 300, "temperature": 0, "messages": LONG},
                    first,
                    generating,
                )
            )
            await generating.wait()
            b = asyncio.create_task(
                stream(
                    http,
                    chat_url(stack),
                    {"model": "auto", "max_tokens": 12, "messages": HARD},
                    second,
                )
            )

            async def both_on_the_worker() -> bool:
                return await asyncio.to_thread(worker_active, stack) == 2

            await eventually(both_on_the_worker, what="the second request waiting on the worker")
            stack.procs["worker"].send_signal(signal.SIGKILL)
            await asyncio.gather(a, b)
        cloud = edge_metric(stack, completion, served_by="cloud", kind="completion") - cloud_before
        local = edge_metric(stack, completion, served_by="local", kind="completion") - local_before

    assert first.status == 200 and first.error is None
    [(to, after)] = first.failovers
    assert to == "local" and 3 <= after < 300, "cut mid-stream, finished here"
    assert first.usage is not None and first.usage["completion_tokens"] == 300

    assert second.status == 200 and second.error is None and second.text
    assert second.headers["X-Tandem-Served-By"] == "local"
    assert second.headers["X-Tandem-Route-Reason"] == "cloud-unavailable"
    assert second.failovers == [("local", 0)]
    assert second.usage is not None

    assert cloud == after, "the cloud is charged only for what it generated"
    assert local == (300 - after) + second.usage["completion_tokens"]
