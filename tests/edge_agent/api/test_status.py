"""``/status`` and ``/status.json`` over a real agent (real model, real worker link):
what the page is served with, who may read the data, and what the data says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from tests.edge_agent.api.harness import Agent, metric_value
from tests.edge_agent.api.status_support import (
    API_KEY,
    AUTH,
    DAILY_BUDGET,
    PROMPT_MARKER,
    agent_with_cloud,
    chat,
    post_chat,
)
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent() -> AsyncIterator[Agent]:
    async with agent_with_cloud(status_recent_requests=5) as running:
        yield running


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/status", "text/html"),
        ("/status/app.js", "text/javascript"),
        ("/status/app.css", "text/css"),
    ],
)
async def test_the_page_is_served_without_the_key_and_holds_no_secret(
    agent: Agent, http: ClientSession, path: str, kind: str
) -> None:
    async with http.get(agent.url + path) as resp:
        assert resp.status == 200
        assert resp.content_type == kind
        body = await resp.text()
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert API_KEY not in body
    assert "http://" not in body and "https://" not in body, "nothing from the network (no CDN)"


async def test_the_data_needs_the_key(agent: Agent, http: ClientSession) -> None:
    async with http.get(f"{agent.url}/status.json") as resp:
        assert resp.status == 401
    async with http.get(f"{agent.url}/status.json", headers=AUTH) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("path", ["/status", "/status.json"])
async def test_a_rebound_host_is_refused(agent: Agent, http: ClientSession, path: str) -> None:
    headers = {**AUTH, "Host": "attacker.example"}
    async with http.get(agent.url + path, headers=headers) as resp:
        assert resp.status == 403


async def test_an_allowed_origin_may_read_it_and_another_may_not(
    agent: Agent, http: ClientSession
) -> None:
    headers = {**AUTH, "Origin": "https://evil.example"}
    async with http.get(f"{agent.url}/status.json", headers=headers) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_status_shows_state_budget_and_recent_requests(
    agent: Agent, http: ClientSession
) -> None:
    local_status, local_id = await post_chat(http, agent, chat("edge"))
    cloud_status, cloud_id = await post_chat(http, agent, chat("cloud"))
    assert local_status == cloud_status == 200
    async with http.get(f"{agent.url}/status.json", headers=AUTH) as resp:
        doc = await resp.json()
        raw = await resp.text()
    assert PROMPT_MARKER not in raw and API_KEY not in raw
    assert doc["local_model"] == "SmolLM2-135M-Instruct.Q4_1" and doc["local_ready"] is True
    assert doc["cloud"] == "ready" and doc["cloud_path"] == "direct"
    assert [(w["role"], w["path"]) for w in doc["workers"]] == [("primary", "direct")]
    by_id = {r["request_id"]: r for r in doc["recent"]}
    local, cloud = by_id[local_id], by_id[cloud_id]
    assert (local["route"], local["served_by"], local["reason"]) == (
        "local",
        "local",
        "forced-local",
    )
    assert (cloud["served_by"], cloud["path"], cloud["status"]) == ("cloud", "direct", 200)
    assert cloud["total_ms"] >= cloud["ttft_ms"] > 0
    spent = cloud["prompt_tokens"] + cloud["completion_tokens"]
    assert doc["budget"]["limit"] == DAILY_BUDGET
    assert doc["budget"]["spent"] >= spent > 0
    assert metric_value(agent, "tandem_edge_cloud_budget_spent_tokens") == doc["budget"]["spent"]
    assert metric_value(agent, "tandem_edge_cloud_budget_tokens") == DAILY_BUDGET
    assert metric_value(agent, "tandem_edge_cloud_workers") == 1
    # ?since= returns only what is newer; nothing newer yet.
    async with http.get(f"{agent.url}/status.json?since={doc['last_seq']}", headers=AUTH) as resp:
        assert (await resp.json())["recent"] == []


async def test_the_ring_is_bounded(agent: Agent, http: ClientSession) -> None:
    ids = [(await post_chat(http, agent, chat("edge", max_tokens=1)))[1] for _ in range(7)]

    async def recent() -> list[str]:
        async with http.get(f"{agent.url}/status.json", headers=AUTH) as resp:
            return [r["request_id"] for r in (await resp.json())["recent"]]

    assert await eventually(recent) == ids[-5:], "the 5 newest, oldest first"
