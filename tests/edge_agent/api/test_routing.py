"""Model names, the X-Tandem-Route header and the route headers on every answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession
from multidict import CIMultiDictProxy

from edge_agent.engines.local import LocalEngine
from tests.edge_agent.api.harness import (
    Agent,
    cloud_engine,
    metric_value,
    running_agent,
    wait_until_idle,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def chat(model: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    if model is not None:
        body["model"] = model
    return body


async def post(
    http: ClientSession, agent: Agent, body: dict[str, Any], **headers: str
) -> tuple[int, CIMultiDictProxy[str], dict[str, Any]]:
    async with http.post(f"{agent.v1}/chat/completions", json=body, headers=headers) as response:
        return response.status, response.headers, await response.json()


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (None, "cloud-unavailable"),  # auto (the default route) without a cloud
        ("", "cloud-unavailable"),
        ("auto", "cloud-unavailable"),
        ("edge", "forced-local"),
        ("LOCAL_MODEL", "forced-local"),
    ],
)
async def test_model_names(
    http: ClientSession, agent: Agent, model: str | None, reason: str
) -> None:
    if model == "LOCAL_MODEL":
        model = agent.local.model
    status, headers, body = await post(http, agent, chat(model))
    assert status == 200
    assert headers["X-Tandem-Served-By"] == "local"
    assert headers["X-Tandem-Route-Reason"] == reason
    assert headers["X-Request-Id"] == body["id"]
    assert body["model"] == agent.local.model


async def test_header_overrides_model(http: ClientSession, agent: Agent) -> None:
    _, headers, _ = await post(http, agent, chat("auto"), **{"X-Tandem-Route": "local"})
    assert headers["X-Tandem-Route-Reason"] == "forced-local"
    _, headers, _ = await post(http, agent, chat("edge"), **{"X-Tandem-Route": "AUTO"})
    assert headers["X-Tandem-Route-Reason"] == "cloud-unavailable"


async def test_invalid_route_header(http: ClientSession, agent: Agent) -> None:
    status, headers, body = await post(http, agent, chat(), **{"X-Tandem-Route": "moon"})
    assert status == 400
    assert "X-Tandem-Route" in body["error"]["message"]
    assert "X-Request-Id" in headers


async def test_unknown_model(http: ClientSession, agent: Agent) -> None:
    status, headers, body = await post(http, agent, chat("gpt-4o"))
    assert status == 404
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["param"] == "model"
    assert body["error"]["type"] == "invalid_request_error"
    assert "X-Tandem-Served-By" not in headers  # refused before routing


@pytest.mark.parametrize(
    ("model", "header"), [("cloud", None), ("auto", "cloud"), ("edge", "cloud")]
)
async def test_forced_cloud_without_cloud_is_503(
    http: ClientSession, agent: Agent, model: str, header: str | None
) -> None:
    before = metric_value(
        agent, "tandem_edge_route_decisions_total", route="cloud", reason="forced-cloud"
    )
    extra = {"X-Tandem-Route": header} if header else {}
    status, headers, body = await post(http, agent, chat(model), **extra)
    assert status == 503
    assert body["error"]["code"] == "cloud_unavailable"
    assert body["error"]["type"] == "server_error"
    assert headers["X-Tandem-Served-By"] == "cloud"
    assert headers["X-Tandem-Route-Reason"] == "forced-cloud"
    after = metric_value(
        agent, "tandem_edge_route_decisions_total", route="cloud", reason="forced-cloud"
    )
    assert after == before + 1


async def test_router_heuristics_are_visible_only_with_a_cloud(
    http: ClientSession, agent: Agent
) -> None:
    # With no cloud, even a code question stays local, and says why.
    body = chat("auto")
    body["messages"] = [{"role": "user", "content": "Write a python function to sort a list"}]
    status, headers, _ = await post(http, agent, body)
    assert (status, headers["X-Tandem-Route-Reason"]) == (200, "cloud-unavailable")


async def test_prompt_token_limit_refuses_before_routing(
    local: LocalEngine, http: ClientSession
) -> None:
    """A prompt above ``max_prompt_tokens`` is a 400 on every route and both APIs; one
    under it is served. The refusal happens before routing, so nothing is generated."""
    long_text = "word " * 200  # ~250 estimated tokens
    async with running_agent(local, max_prompt_tokens=64) as agent:
        for model in ("auto", "edge", "cloud"):
            body = {**chat(model), "messages": [{"role": "user", "content": long_text}]}
            async with http.post(f"{agent.v1}/chat/completions", json=body) as resp:
                error = (await resp.json())["error"]
                assert resp.status == 400, model
                assert error["code"] == "prompt_too_long" and error["param"] == "messages"
                assert "at most 64" in error["message"]
                assert "--max-prompt-tokens" in error["message"]
        ollama = {"model": "edge", "stream": False, "prompt": long_text}
        async with http.post(f"{agent.url}/api/generate", json=ollama) as resp:
            assert resp.status == 400
            assert "at most 64" in (await resp.json())["error"]  # Ollama's error shape
        async with http.post(f"{agent.v1}/chat/completions", json=chat("edge")) as resp:
            assert resp.status == 200
        assert metric_value(agent, "tandem_edge_tokens_total", served_by="local", kind="prompt") > 0


async def test_request_timeout_cancels_generation(local: LocalEngine, http: ClientSession) -> None:
    """Past ``request_timeout_s``: 504 before the first byte, an error event after it, and
    in both cases the model stops generating."""
    long = {
        **chat("edge"),
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "Tell me a very long story about ships."}],
    }
    async with running_agent(local, request_timeout_s=0.4) as agent:
        async with http.post(f"{agent.v1}/chat/completions", json=long) as resp:
            body = await resp.json()
            assert resp.status == 504 and body["error"]["code"] == "timeout"
            assert "--request-timeout-s" in body["error"]["message"]
        await wait_until_idle(local)
        stream = {**long, "stream": True}
        async with http.post(f"{agent.v1}/chat/completions", json=stream) as resp:
            assert resp.status == 200
            events = [line async for line in resp.content if line.startswith(b"data: {")]
        assert any(b'"content"' in e for e in events), "tokens flowed before the deadline"
        last = json.loads(events[-1][6:])
        assert last["error"]["code"] == "timeout"
        await wait_until_idle(local)


async def test_spent_cloud_budget_answers_locally_and_says_so(
    http: ClientSession, local: LocalEngine
) -> None:
    """A hard prompt goes to the cloud until the day's cloud tokens are spent; then the
    same prompt is answered here, with ``budget-exhausted`` in the header and metric."""
    hard = {
        "max_tokens": 4,
        "messages": [
            {"role": "user", "content": "Prove that there are infinitely many prime numbers."}
        ],
    }
    async with (
        cloud_engine() as cloud,
        running_agent(local, cloud=cloud, cloud_daily_token_budget=10) as agent,
    ):
        status, headers, _ = await post(http, agent, hard)
        assert status == 200 and headers["X-Tandem-Served-By"] == "cloud"
        status, headers, body = await post(http, agent, hard)
        assert status == 200 and body["choices"][0]["message"]["content"]
        assert headers["X-Tandem-Served-By"] == "local"
        assert headers["X-Tandem-Route-Reason"] == "budget-exhausted"
        decisions = "tandem_edge_route_decisions_total"
        assert metric_value(agent, decisions, route="local", reason="budget-exhausted") == 1


async def test_busy_local_model_sends_easy_prompts_to_the_cloud(
    http: ClientSession, local: LocalEngine
) -> None:
    """With more local requests running than ``local_overload_queue``, an easy ``auto``
    prompt goes to the cloud, saying ``local-overloaded``."""
    long = {
        "model": "edge",
        "stream": True,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Tell me a long story about a lighthouse."}],
    }
    async with (
        cloud_engine() as cloud,
        running_agent(local, cloud=cloud, local_overload_queue=0) as agent,
        http.post(f"{agent.v1}/chat/completions", json=long) as busy,
    ):
        await busy.content.readline()  # the local model is generating now
        status, headers, _ = await post(http, agent, chat("auto"))
        assert status == 200 and headers["X-Tandem-Served-By"] == "cloud"
        assert headers["X-Tandem-Route-Reason"] == "local-overloaded"
        busy.close()
    await wait_until_idle(local)
