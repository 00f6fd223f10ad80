"""The Ollama endpoints, as Ollama clients call them, over the real model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.edge_agent.api.harness import Agent

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def ndjson(http: ClientSession, url: str, body: dict[str, Any]) -> tuple[Any, list[Any]]:
    async with http.post(url, json=body) as response:
        raw = await response.text()
    return response, [json.loads(line) for line in raw.splitlines() if line]


async def test_chat_streams_ndjson_by_default(http: ClientSession, agent: Agent) -> None:
    body = {
        "model": "edge:latest",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "options": {"num_predict": 12, "temperature": 0, "seed": 3},
    }
    response, lines = await ndjson(http, f"{agent.url}/api/chat", body)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert response.headers["X-Tandem-Route-Reason"] == "forced-local"
    *parts, last = lines
    assert len(parts) > 1 and all(p["done"] is False for p in parts)
    assert "".join(p["message"]["content"] for p in parts).strip()
    assert last["done"] is True and last["done_reason"] in ("stop", "length")
    assert 0 < last["eval_count"] <= 12 and last["prompt_eval_count"] > 0
    assert last["total_duration"] >= last["eval_duration"] > 0
    assert {line["model"] for line in lines} == {agent.local.model}


async def test_chat_without_streaming(http: ClientSession, agent: Agent) -> None:
    body = {
        "model": "auto",
        "stream": False,
        "messages": [{"role": "user", "content": "Say hi"}],
        "options": {"num_predict": 4},
    }
    async with http.post(f"{agent.url}/api/chat", json=body) as response:
        assert response.status == 200
        reply = await response.json()
    assert reply["done"] is True and reply["message"]["role"] == "assistant"
    assert reply["message"]["content"] and reply["eval_count"] <= 4


async def test_generate(http: ClientSession, agent: Agent) -> None:
    body = {
        "model": agent.local.model,
        "prompt": "Why is the sky blue?",
        "options": {"num_predict": 8},
    }
    response, lines = await ndjson(http, f"{agent.url}/api/generate", body)
    assert response.status == 200
    assert "".join(line.get("response", "") for line in lines).strip()
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] <= 8
    raw = {
        "model": "edge",
        "prompt": "1, 2, 3,",
        "raw": True,
        "stream": False,
        "options": {"num_predict": 4},
    }
    async with http.post(f"{agent.url}/api/generate", json=raw) as raw_response:
        assert (await raw_response.json())["response"]


async def test_generate_with_empty_prompt_only_loads(http: ClientSession, agent: Agent) -> None:
    async with http.post(f"{agent.url}/api/generate", json={"model": "edge"}) as response:
        assert response.status == 200
        assert (await response.json())["done"] is True


async def test_tags_and_version(http: ClientSession, agent: Agent) -> None:
    async with http.get(f"{agent.url}/api/tags") as response:
        names = [m["name"] for m in (await response.json())["models"]]
    assert names == ["auto", "edge", agent.local.model]
    async with http.get(f"{agent.url}/api/version") as response:
        assert (await response.json())["version"]


async def test_unknown_model(http: ClientSession, agent: Agent) -> None:
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{agent.url}/api/chat", json=body) as response:
        assert response.status == 404
        assert "llama3" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # Regressions (were 500s): past llama.cpp's 32-bit token counts...
        ("/api/generate", {"model": "edge", "prompt": "Hi", "options": {"num_predict": 2**31}}),
        # ... and a lone surrogate in the model name, which answers echo back.
        ("/api/chat", {"model": "\ud800", "messages": [{"role": "user", "content": "Hi"}]}),
        ("/api/generate", {"model": "\ud800"}),
    ],
)
async def test_invalid_bodies_are_400s(
    http: ClientSession, agent: Agent, path: str, body: dict[str, Any]
) -> None:
    async with http.post(f"{agent.url}{path}", json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"]
