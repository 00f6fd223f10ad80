"""A worker in front of a real OpenAI-compatible engine (``--backend openai``).

The engine is ``python -m llama_cpp.server`` with the bundled GGUF, where vLLM, SGLang or
llama-server would run on a GPU machine: signaling, the worker and the edge are the real
programs; nothing is mocked. Streamed and plain answers; eight streams at once through
one worker; a cancelled stream closes the engine's request (the engine says so in its
log); the engine killed mid-stream, or down at start; and a stream resumed on the engine
from text another worker delivered, with no gap and no repeat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from devstack.stack import Stack, free_port
from tests.e2e.conftest import running_stack
from tests.e2e.test_cloud_failures import Streamed, scrape, stream
from tests.support.model import model_path
from tests.support.upstream import ALIAS, Upstream, upstream_server
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

FEW_SHOT = [
    {"role": "user", "content": "Count from 212 to 219, separated by commas."},
    {"role": "assistant", "content": "212, 213, 214, 215, 216, 217, 218, 219"},
    {"role": "user", "content": "Count from 57 to 63, separated by commas."},
    {"role": "assistant", "content": "57, 58, 59, 60, 61, 62, 63"},
]


def counting(start: int) -> list[dict[str, str]]:
    return [*FEW_SHOT, {"role": "user", "content": f"Count from {start} to {start + 40}."}]


def counts_up(text: str) -> bool:
    nums = [int(n) for n in re.findall(r"\d+", text)]
    return len(nums) >= 5 and all(b == a + 1 for a, b in itertools.pairwise(nums))


def worker_args(engine: Upstream, *extra: str) -> list[str]:
    return [
        "--backend", "openai", "--upstream-url", engine.url,
        "--upstream-continuation", "completions", "--upstream-chat-template", str(model_path()),
        "--upstream-health-interval-s", "0.5", "--max-concurrency", "8", *extra,
    ]  # fmt: skip


def worker_streams(stack: Stack, result: str) -> float:
    metrics = stack.worker_health_url.replace("/healthz", "/metrics")
    return scrape(metrics, "tandem_worker_streams_total", result=result)


def answered(url: str) -> dict[str, Any] | None:
    """``health``, or ``None`` while nothing listens at ``url`` yet."""
    try:
        return health(url)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None
        raise


def health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        return body


def chat_url(stack: Stack) -> str:
    return f"{stack.edge_url}/v1/chat/completions"


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Upstream]]:
    logs = tmp_path_factory.mktemp("openai-upstream")
    with (
        upstream_server(logs) as engine,
        running_stack(logs, worker_args=worker_args(engine)) as stack,
    ):
        yield stack, engine


async def test_cloud_answers_come_from_the_engine_streamed_or_not(
    fronted: tuple[Stack, Upstream],
) -> None:
    stack, _ = fronted
    assert health(stack.worker_health_url)["models"] == [ALIAS]
    sdk = AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)
    ask: list[Any] = [{"role": "user", "content": "Name three colours."}]
    raw = await sdk.chat.completions.with_raw_response.create(
        model="cloud", messages=ask, max_tokens=12, temperature=0
    )
    reply = raw.parse()
    assert raw.headers["x-tandem-served-by"] == "cloud"
    assert reply.model == ALIAS and reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens <= 12

    pieces = []
    events = await sdk.chat.completions.create(
        model="cloud",
        messages=ask,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in events:
        pieces += [c.delta.content for c in chunk.choices if c.delta.content]
        usage = chunk.usage or usage
    assert len(pieces) > 1, "tokens arrive as the engine generates them"
    assert usage is not None and 0 < usage.completion_tokens <= 12


async def test_eight_streams_at_once_through_one_worker_none_refused(
    fronted: tuple[Stack, Upstream],
) -> None:
    stack, _ = fronted
    refused, completed = worker_streams(stack, "refused"), worker_streams(stack, "completed")
    body = {"model": "cloud", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    async with aiohttp.ClientSession() as http:
        outs = await asyncio.gather(
            *(stream(http, chat_url(stack), body, Streamed()) for _ in range(8))
        )
    for out in outs:
        assert out.status == 200 and out.error is None and out.text
        assert out.headers["X-Tandem-Served-By"] == "cloud" and not out.failovers
    # The worker counts a stream once its last frame is handed to the channel, which can
    # be just after the client read it: wait for the count, then check it is exact.
    await eventually(
        lambda: worker_streams(stack, "completed") >= completed + 8, what="8 streams counted"
    )
    assert worker_streams(stack, "completed") == completed + 8
    assert worker_streams(stack, "refused") == refused


async def test_a_cancelled_stream_stops_the_engine(fronted: tuple[Stack, Upstream]) -> None:
    stack, engine = fronted
    said = "Disconnected from client"
    before = engine.log.read_text(errors="replace").count(said)
    cancelled = worker_streams(stack, "cancelled")
    long = {
        "model": "cloud",
        "max_tokens": 1500,
        "messages": [{"role": "user", "content": "Write a long story."}],
    }
    async with aiohttp.ClientSession() as http:
        resp = await http.post(chat_url(stack), json={**long, "stream": True})
        seen = 0
        async for line in resp.content:
            seen += line.startswith(b"data: {") and b'"content"' in line
            if seen >= 3:
                break
        resp.close()  # the client walks away mid-stream
    await eventually(
        lambda: engine.log.read_text(errors="replace").count(said) > before,
        what="the engine saw its request closed and stopped generating",
    )
    await eventually(
        lambda: asyncio.to_thread(worker_streams, stack, "cancelled"),
        what="the worker counted the cancelled stream",
    )
    assert worker_streams(stack, "cancelled") == cancelled + 1


async def test_a_stream_the_engine_breaks_is_a_failure_never_an_empty_answer(
    fronted: tuple[Stack, Upstream],
) -> None:
    # llama_cpp.server answers a prompt past its context (2048) with a 200 and then ends
    # the stream without [DONE]: each attempt fails, within the bound.
    stack, _ = fronted
    # every way the worker counts a request's end (cloud_worker.edge_session)
    ended = ("failed", "cancelled", "refused", "handed-back", "completed")
    before = {result: worker_streams(stack, result) for result in ended}
    long = [{"role": "user", "content": "word " * 3000}]
    async with aiohttp.ClientSession() as http:
        body = {"model": "cloud", "max_tokens": 4, "messages": long}
        async with http.post(chat_url(stack), json=body) as resp:
            error = (await resp.json())["error"]
            assert resp.status == 503 and "3 cloud attempt(s) failed" in error["message"]

    def deltas() -> dict[str, float]:
        return {result: worker_streams(stack, result) - before[result] for result in ended}

    # Each attempt ends on the worker as failed (the engine broke it) or, on a slow machine,
    # otherwise: cancelled (the edge gave up on it first), refused (the last attempt still
    # held the edge's share) or handed back (the engine, busy refusing a 3,000-word prompt,
    # missed its health checks and the worker paused). It is counted as its last frame is
    # handed to the channel, which can be just after the edge answered: wait for all 3.
    # The bound is generous: on one busy core the engine is still refusing the third
    # 3,000-word prompt well after the edge answered.
    try:
        await eventually(lambda: sum(deltas().values()) >= 3, timeout_s=180, what="3 attempts")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker counted {deltas()}") from None
    counted = deltas()
    assert sum(counted.values()) == 3, counted
    assert counted["failed"] >= 1, f"the engine's broken stream was never a failure: {counted}"
    assert counted["completed"] == 0, f"a broken stream was passed off as an answer: {counted}"


async def test_engine_killed_mid_stream_then_back(tmp_path: Path) -> None:
    """The stream finishes on the edge from where it was; the worker reports the engine
    down and takes no edges; when the engine is back, so is the cloud."""
    with (
        upstream_server(tmp_path) as engine,
        running_stack(tmp_path, worker_args=worker_args(engine)) as stack,
    ):
        async with aiohttp.ClientSession() as http:
            out, cutting = Streamed(), asyncio.Event()
            body = {"model": "cloud", "max_tokens": 64, "temperature": 0, "messages": counting(130)}
            task = asyncio.create_task(stream(http, chat_url(stack), body, out, cutting))
            await cutting.wait()
            engine.kill()
            await task
            reference = await stream(http, chat_url(stack), {**body, "model": "edge"}, Streamed())
        assert out.status == 200 and out.error is None
        assert out.failovers and out.failovers[-1][0] == "local" and out.failovers[-1][1] >= 3
        assert out.usage is not None and out.usage["completion_tokens"] == 64
        if counts_up(reference.text):  # else the model miscounts this prompt undisturbed
            assert counts_up(out.text), f"text lost or repeated: {out.text!r}"
        await eventually(
            lambda: health(stack.worker_health_url)["status"] == "engine-down",
            what="the worker reports its engine down",
        )
        await eventually(
            lambda: health(f"{stack.edge_url}/healthz")["cloud"] == "unavailable",
            what="the edge left the worker whose engine is down",
        )
        await asyncio.to_thread(engine.start)  # the engine's supervisor restarts it
        await eventually(
            lambda: health(f"{stack.edge_url}/healthz")["cloud"] == "ready",
            timeout_s=120,
            what="the edge linked to the worker again",
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(chat_url(stack), json={**body, "max_tokens": 4}) as resp,
        ):
            assert resp.status == 200 and resp.headers["X-Tandem-Served-By"] == "cloud"


async def test_engine_down_at_start_the_edge_answers_locally_until_it_is_up(
    tmp_path: Path,
) -> None:
    with (
        upstream_server(tmp_path, start=False) as engine,
        running_stack(
            tmp_path,
            worker_args=worker_args(engine),
            wait_for_cloud=False,
        ) as stack,
    ):
        # The stack waited for the edge only: the worker's port may not listen yet.
        worker = await eventually(
            lambda: answered(stack.worker_health_url),
            timeout_s=120,
            what="the worker's health endpoint answered",
        )
        assert worker is not None  # eventually returns only a truthy answer
        assert worker["status"] == "loading"  # waits for its engine
        hard = {
            "model": "auto",
            "max_tokens": 6,
            "messages": [
                {"role": "user", "content": "Prove that there are infinitely many prime numbers."}
            ],
        }
        async with aiohttp.ClientSession() as http, http.post(chat_url(stack), json=hard) as r:
            assert r.status == 200 and r.headers["X-Tandem-Served-By"] == "local"
            assert r.headers["X-Tandem-Route-Reason"] == "cloud-unavailable"
        await asyncio.to_thread(engine.start)
        await eventually(
            lambda: health(f"{stack.edge_url}/healthz")["cloud"] == "ready",
            timeout_s=120,
            what="the worker registered once its engine answered, and the edge linked",
        )
        async with aiohttp.ClientSession() as http, http.post(chat_url(stack), json=hard) as r:
            assert r.status == 200 and r.headers["X-Tandem-Served-By"] == "cloud"


async def test_a_stream_resumes_on_the_engine_with_no_gap_and_no_repeat(
    tmp_path: Path,
) -> None:
    """worker-1 (its own model) is stopped mid-stream with no grace; the stream resumes
    on worker-2, which asks its engine to continue the delivered text."""
    with (
        upstream_server(tmp_path) as engine,
        running_stack(tmp_path, worker_args=["--drain-grace-s", "0"]) as stack,
    ):
        stack.start_worker("worker-2", "worker-2", free_port(), worker_args(engine))
        signaling = f"http://{stack.config.host}:{stack.config.signaling_port}/healthz"
        await eventually(lambda: health(signaling)["workers"] == 2, what="worker-2 registered")
        async with aiohttp.ClientSession() as http:
            for start in (130, 241, 77, 318, 52):  # the first prompt the model counts right
                body = {
                    "model": "cloud",
                    "max_tokens": 48,
                    "temperature": 0,
                    "messages": counting(start),
                }
                reference = await stream(
                    http, chat_url(stack), {**body, "model": "edge"}, Streamed()
                )
                if counts_up(reference.text):
                    break
            else:
                pytest.fail(
                    "the model miscounts every prompt tried: the oracle has nothing to check"
                )
            out, cutting = Streamed(), asyncio.Event()
            task = asyncio.create_task(stream(http, chat_url(stack), body, out, cutting))
            await cutting.wait()
            stack.procs["worker"].send_signal(signal.SIGTERM)  # drains with no grace
            await task
    assert out.status == 200 and out.error is None
    [(to, after)] = out.failovers
    assert to == "cloud" and after >= 3, "resumed on the other worker, mid-stream"
    assert out.usage is not None and after < out.usage["completion_tokens"] <= 48
    assert counts_up(out.text), f"text lost or repeated at the seam: {out.text!r}"
