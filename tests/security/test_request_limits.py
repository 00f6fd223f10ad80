"""Issue 13, item 5: what the edge accepts always fits the link to a worker.

The attacks run against the real edge app over the real bundled model, with a real
worker app linked through a real signaling app (loopback WebRTC), all in this loop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.serving.wire import wire_limit
from shared.codec import MAX_MESSAGE_BYTES, encode
from shared.messages import GenerateRequest, SamplingParams
from tests.edge_agent.api.harness import Agent, cloud_engine, loaded_engine, running_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

BIG_PROMPTS = 1_000_000
"""An operator who raised --max-prompt-tokens far enough for a 1 MiB prompt: the link's
limit must hold whatever the prompt limit says."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[LocalEngine]:
    async with loaded_engine() as engine:
        yield engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cloud() -> AsyncIterator[RemoteEngine]:
    async with cloud_engine() as engine:
        yield engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(local: LocalEngine, cloud: RemoteEngine) -> AsyncIterator[Agent]:
    async with running_agent(local, cloud=cloud, max_prompt_tokens=BIG_PROMPTS) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def post(http: ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "cloud", "messages": [{"role": "user", "content": "Hi"}], **extra}


async def test_a_960_kb_stop_list_is_refused(http: ClientSession, agent: Agent) -> None:
    """The attack from the issue: four stop strings of 240 KB each (960 KB, under the
    1 MiB body limit) to the cloud. Before the fix the edge accepted it and the worker
    scanned 960 KB of stop strings per token; now the first too-long string is refused
    by name, and so is a list longer than --max-stop-sequences."""
    stop = ["x" * 240_000] * 4
    status, body = await post(http, f"{agent.v1}/chat/completions", chat(stop=stop, max_tokens=2))
    assert status == 400, body
    assert body["error"]["param"] == "stop[0]"
    assert "--max-stop-chars" in body["error"]["message"]

    status, body = await post(
        http, f"{agent.v1}/chat/completions", chat(stop=["s"] * 17, max_tokens=2)
    )
    assert status == 400 and body["error"]["param"] == "stop", body


async def test_stop_limits_are_the_same_in_both_dialects(http: ClientSession, agent: Agent) -> None:
    """16 stop strings of 256 characters are served (Ollama clients send more than
    OpenAI's 4); one more string, or one more character, is refused, in each dialect."""
    fits = ["\u00e9" * 255 + str(i % 10) for i in range(16)]
    local = {"model": "edge", "messages": [{"role": "user", "content": "Hi"}]}
    status, body = await post(
        http, f"{agent.v1}/chat/completions", {**local, "stop": fits, "max_tokens": 2}
    )
    assert status == 200, body
    ollama = {**local, "stream": False, "options": {"num_predict": 2}}
    status, body = await post(
        http, f"{agent.url}/api/chat", {**ollama, "options": {"num_predict": 2, "stop": fits}}
    )
    assert status == 200, body

    for stop in ([*fits, "s"], [fits[0] + "x"]):
        status, body = await post(http, f"{agent.v1}/chat/completions", {**local, "stop": stop})
        assert status == 400, body
        status, body = await post(
            http, f"{agent.url}/api/chat", {**ollama, "options": {"stop": stop}}
        )
        assert status == 400 and "options.stop" in body["error"], body


def prompt_for(encoded_bytes: int) -> str:
    """A prompt whose completions request (as the edge builds it) encodes to exactly
    ``encoded_bytes``: the threshold is measured on the real encoding, not guessed."""

    def size(prompt: str) -> int:
        params = SamplingParams(max_tokens=16)
        request = GenerateRequest(request_id="cmpl-" + "0" * 32, prompt=prompt, params=params)
        return len(encode(request))

    overhead = size("x" * 70_000) - 70_000  # str32 from 65536 characters on: linear
    return "x" * (encoded_bytes - overhead)


async def sse_events(http: ClientSession, url: str, body: dict[str, Any]) -> AsyncIterator[str]:
    async with http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        assert response.headers["X-Tandem-Served-By"] == "cloud"
        async for line in response.content:
            yield line.decode().rstrip("\n")


async def test_a_body_under_the_http_limit_that_would_overflow_the_link_is_refused(
    http: ClientSession, agent: Agent
) -> None:
    """A body under the 1 MiB HTTP limit whose request encodes over the worker's 1 MiB
    reassembly limit. Before the fix the edge sent it and the worker dropped the whole
    link: the other stream on it failed over to the local model. Now it is a 413 and
    the stream beside it finishes on the worker, untouched."""
    prompt = prompt_for(MAX_MESSAGE_BYTES + 64)
    attack = {"model": "cloud", "prompt": prompt}
    assert len(json.dumps(attack)) < agent.settings.max_body_bytes
    beside = chat(
        stream=True,
        max_tokens=400,
        temperature=0,
        messages=[{"role": "user", "content": "Count from 1 to 500, one number a line."}],
    )
    events = sse_events(http, f"{agent.v1}/chat/completions", beside)
    lines = [await anext(events)]  # the stream is under way on the worker
    status, body = await post(http, f"{agent.v1}/completions", attack)
    assert status == 413, body
    assert body["error"]["code"] == "request_too_large"
    lines += [line async for line in events]
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    assert not any("x-tandem-failover" in line for line in lines), "the link was dropped"


async def test_the_threshold_is_the_link_limit_less_the_headroom(
    http: ClientSession, agent: Agent
) -> None:
    """A prompt that encodes to exactly the edge's limit goes to the worker, which
    answers for itself (it cannot hold a 1 MB prompt: 400 context_length_exceeded) over a
    link that survives; one byte more is the edge's 413."""
    status, body = await post(
        http, f"{agent.v1}/completions", {"model": "cloud", "prompt": prompt_for(wire_limit())}
    )
    assert status == 400 and body["error"]["code"] == "context_length_exceeded", body
    status, body = await post(
        http,
        f"{agent.v1}/completions",
        {"model": "cloud", "prompt": prompt_for(wire_limit() + 1)},
    )
    assert status == 413, body
