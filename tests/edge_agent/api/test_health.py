"""/healthz follows the local model's loading; /metrics exposes what requests did."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from tests.edge_agent.api.harness import Agent, llama_runner, running_agent

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_healthz_is_503_until_the_model_is_loaded(http: ClientSession) -> None:
    runner = llama_runner()
    engine = LocalEngine(runner)
    try:
        async with running_agent(engine) as agent:
            async with http.get(f"{agent.url}/healthz") as response:
                assert response.status == 503
                assert await response.json() == {
                    "status": "loading",
                    "cloud": "disabled",
                    "cloud_path": None,
                }
            chat = {"messages": [{"role": "user", "content": "Hi"}]}
            async with http.post(f"{agent.v1}/chat/completions", json=chat) as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "model_loading"
                assert response.headers["Retry-After"] == "1"
            await runner.load()  # what edge_agent.app does at startup
            async with http.get(f"{agent.url}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {
                    "status": "ok",
                    "local_model": engine.model,
                    "cloud": "disabled",
                    "cloud_path": None,
                }
    finally:
        await engine.aclose()


async def test_metrics_after_a_request(
    http: ClientSession, agent: Agent, local: LocalEngine
) -> None:
    chat = {"model": "edge", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    async with http.post(f"{agent.v1}/chat/completions", json=chat) as response:
        usage = (await response.json())["usage"]
    async with http.get(f"{agent.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    request = 'endpoint="/v1/chat/completions",served_by="local",status="200"'
    assert f"tandem_edge_requests_total{{{request}}} 1.0" in text
    assert 'tandem_edge_route_decisions_total{reason="forced-local",route="local"} 1.0' in text
    for kind in ("prompt", "completion"):
        tokens = float(usage[f"{kind}_tokens"])
        assert f'tandem_edge_tokens_total{{kind="{kind}",served_by="local"}} {tokens}' in text
    assert 'tandem_edge_time_to_first_token_seconds_count{served_by="local"} 1.0' in text
    assert "tandem_edge_cloud_channels" in text and "tandem_edge_cloud_connects_total" in text
