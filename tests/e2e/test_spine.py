"""End to end: edge answers locally and escalates over WebRTC to a cloud worker.

Every request here goes through the real edge, signaling and worker processes, the real
WebRTC data channel and the real SmolLM2 model on both sides.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from devstack.stack import Stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


def client(stack: Stack, route: str | None = None) -> AsyncOpenAI:
    headers = {"X-Tandem-Route": route} if route else None
    return AsyncOpenAI(
        base_url=f"{stack.edge_url}/v1", api_key="unused", default_headers=headers, max_retries=0
    )


def worker_health(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.worker_health_url, timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


async def test_escalated_request_streams_tokens_from_the_worker(stack: Stack) -> None:
    raw = await client(stack, "cloud").chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "List three colours of the rainbow."}],
        max_tokens=40,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-tandem-served-by"] == "cloud"
    assert raw.headers["x-tandem-route-reason"] == "forced-cloud"
    assert raw.headers["x-tandem-path"] == "direct"
    content_chunks: list[str] = []
    usage = None
    finish = None
    async for chunk in raw.parse():
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                content_chunks.append(choice.delta.content)
            finish = choice.finish_reason or finish
    text = "".join(content_chunks)
    assert text.strip(), "the worker's model produced no text"
    assert len(content_chunks) > 1, "tokens must stream, not arrive in one piece"
    assert finish in ("stop", "length")
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 40
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_escalated_non_streaming_with_usage(stack: Stack) -> None:
    raw = await client(stack).chat.completions.with_raw_response.create(
        model="cloud",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=5,
        temperature=0,
    )
    completion = raw.parse()
    assert raw.headers["x-tandem-served-by"] == "cloud"
    assert completion.model == "SmolLM2-135M-Instruct.Q4_1"  # the worker's model, via its answer
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 5


async def test_local_answer(stack: Stack) -> None:
    raw = await client(stack).chat.completions.with_raw_response.create(
        model="edge",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
    )
    completion = raw.parse()
    assert raw.headers["x-tandem-served-by"] == "local"
    assert raw.headers["x-tandem-route-reason"] == "forced-local"
    assert "x-tandem-path" not in raw.headers
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


async def test_auto_routes_a_short_question_locally_and_a_long_one_to_the_cloud(
    stack: Stack,
) -> None:
    short = await client(stack).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hi there!"}], max_tokens=8
    )
    assert short.headers["x-tandem-served-by"] == "local"
    long_prompt = "Here is a long report to summarise.\n" + (
        "The committee met and discussed budgets. " * 150
    )
    long = await client(stack).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": long_prompt}], max_tokens=8
    )
    assert long.headers["x-tandem-served-by"] == "cloud"
    assert long.headers["x-tandem-route-reason"] in ("long-prompt", "context-too-long")
    assert long.parse().choices[0].message.content is not None


async def test_completions_endpoint_through_the_cloud(stack: Stack) -> None:
    completion = await client(stack, "cloud").completions.create(
        model="auto", prompt="The three primary colours are", max_tokens=10, temperature=0
    )
    assert completion.choices[0].text.strip()
    assert completion.usage is not None and completion.usage.completion_tokens == 10


async def test_client_disconnect_cancels_generation_on_the_worker(stack: Stack) -> None:
    body = {
        "model": "cloud",
        "stream": True,
        "max_tokens": 1500,
        "messages": [
            {"role": "user", "content": "Write a very long story about a lighthouse keeper."}
        ],
    }
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{stack.edge_url}/v1/chat/completions", json=body)
        assert resp.status == 200
        seen = 0
        async for line in resp.content:
            if line.startswith(b"data: {") and b'"content"' in line:
                seen += 1
                if seen >= 3:
                    break
        assert worker_health(stack)["active_streams"] >= 1
        resp.close()  # the client walks away mid-stream
    await eventually(
        lambda: asyncio.to_thread(lambda: worker_health(stack)["active_streams"] == 0),
        what="the worker stopped generating for the gone client",
    )


async def test_health_models_and_metrics(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.edge_url}/healthz") as resp:
            assert resp.status == 200
            health = await resp.json()
            assert health["cloud"] == "ready"
        async with session.get(f"{stack.edge_url}/v1/models") as resp:
            ids = {m["id"] for m in (await resp.json())["data"]}
            assert {"auto", "edge", "cloud"} <= ids
        async with session.get(f"{stack.edge_url}/metrics") as resp:
            text = await resp.text()
            assert 'tandem_edge_cloud_channels{path="direct"} 1.0' in text
            assert "tandem_edge_requests_total" in text


async def test_bad_token_is_rejected_by_signaling(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(
                stack.signaling_url, headers={"Authorization": "Bearer forged.token.here"}
            )
        assert info.value.status == 401


async def test_errors_use_the_openai_shape(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.edge_url}/v1/chat/completions",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
            assert set(error) == {"message", "type", "param", "code"}
        async with session.get(f"{stack.edge_url}/v1/nowhere") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["type"]
