"""Token log-probabilities over the real local model, in both OpenAI shapes, streamed or
not: one entry per generated token, each a log-probability (<= 0), the alternatives
asked for, most likely first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.edge_agent.api.harness import Agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

ASK = [{"role": "user", "content": "Name a colour."}]


async def post(http: ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_chat_logprobs(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "messages": ASK, "max_tokens": 5, "logprobs": True, "top_logprobs": 3}
    reply = await post(http, f"{agent.v1}/chat/completions", body)
    choice = reply["choices"][0]
    content = choice["logprobs"]["content"]
    assert len(content) == reply["usage"]["completion_tokens"]
    for entry in content:
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode() == entry["token"]
        top = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(top) == 3 and top == sorted(top, reverse=True)
        assert entry["logprob"] <= top[0] + 1e-6
    assert "".join(e["token"] for e in content).startswith(choice["message"]["content"][:1])
    plain = await post(
        http, f"{agent.v1}/chat/completions", {**body, "logprobs": False, "top_logprobs": None}
    )
    assert plain["choices"][0]["logprobs"] is None


async def test_streamed_chat_logprobs_add_up(http: ClientSession, agent: Agent) -> None:
    body = {
        "model": "edge",
        "messages": ASK,
        "max_tokens": 6,
        "logprobs": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        raw = await response.text()
    events = [
        json.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    entries = [
        e
        for event in events
        for choice in event["choices"]
        for e in ((choice.get("logprobs") or {}).get("content") or [])
    ]
    assert len(entries) == events[-1]["usage"]["completion_tokens"]


async def test_completion_logprobs_legacy_shape(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "prompt": "The sky is", "max_tokens": 4, "logprobs": 2}
    reply = await post(http, f"{agent.v1}/completions", body)
    scored = reply["choices"][0]["logprobs"]
    n = reply["usage"]["completion_tokens"]
    assert len(scored["tokens"]) == len(scored["token_logprobs"]) == n
    assert all(len(alternatives) <= 2 for alternatives in scored["top_logprobs"])
    offsets = scored["text_offset"]
    assert offsets[0] == 0 and offsets == sorted(offsets)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
async def test_logprob_requests_that_cannot_be_served(
    http: ClientSession, agent: Agent, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "edge", "messages": ASK, "max_tokens": 2, **extra}
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == param
