"""The middlewares on a real agent: error shapes for every failure, the API key, the
request counter."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from tests.edge_agent.api.harness import Agent, metric_value, running_agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "s3cret-key-for-tests"
CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


async def test_api_key_required_when_set(http: ClientSession, local: LocalEngine) -> None:
    async with running_agent(local, api_key=KEY) as agent:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            async with http.post(f"{agent.v1}/chat/completions", json=CHAT, headers=headers) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"] == "Bearer"
                body = await r.json()
                assert body["error"]["code"] == "invalid_api_key"
                assert KEY not in await r.text()
        # unknown routes are hidden behind the key too
        async with http.get(f"{agent.v1}/nothing") as r:
            assert r.status == 401
        good = {"Authorization": f"Bearer {KEY}"}
        async with http.post(f"{agent.v1}/chat/completions", json=CHAT, headers=good) as r:
            assert r.status == 200
        async with http.get(f"{agent.v1}/models", headers=good) as r:
            assert r.status == 200
        async with http.get(f"{agent.url}/healthz") as r:  # exempt: probes carry no secrets
            assert r.status == 200
        assert (
            metric_value(
                agent,
                "tandem_edge_requests_total",
                endpoint="/v1/chat/completions",
                served_by="none",
                status="401",
            )
            == 3
        )


async def test_requests_are_counted_by_endpoint_engine_and_status(
    http: ClientSession, local: LocalEngine
) -> None:
    async with running_agent(local) as agent:
        async with http.post(f"{agent.v1}/chat/completions", json=CHAT) as r:
            assert r.status == 200
        async with http.post(f"{agent.v1}/chat/completions", json={"model": "nope", **CHAT}) as r:
            assert r.status == 404
        async with http.get(f"{agent.url}/no/such/path/123") as r:
            assert r.status == 404

        def count(**labels: str) -> float:
            return metric_value(agent, "tandem_edge_requests_total", **labels)

        assert count(endpoint="/v1/chat/completions", served_by="local", status="200") == 1
        assert count(endpoint="/v1/chat/completions", served_by="none", status="404") == 1
        # unmatched paths share one label value: no series per attacker-chosen URL
        assert count(endpoint="unmatched", served_by="none", status="404") == 1


def assert_openai_error(body: object, code: str, error_type: str = "invalid_request_error") -> None:
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["type"] == error_type and error["message"]


JSON = {"Content-Type": "application/json"}


async def test_malformed_json(http: ClientSession, agent: Agent) -> None:
    for raw in (b'{"messages": [', b"", b"\xff\xfe", b"[1, 2]", b'"just a string"'):
        async with http.post(f"{agent.v1}/chat/completions", data=raw, headers=JSON) as response:
            assert response.status == 400, raw
            assert_openai_error(await response.json(), "invalid_json")
            assert "X-Request-Id" in response.headers


async def test_text_that_cannot_be_utf8_is_a_400(http: ClientSession, agent: Agent) -> None:
    # JSON can carry a lone surrogate; the wire (msgpack, UTF-8) cannot.
    raw = b'{"model": "edge", "messages": [{"role": "user", "content": "bad \\ud800 text"}]}'
    async with http.post(f"{agent.v1}/chat/completions", data=raw, headers=JSON) as response:
        assert response.status == 400
        body = await response.json()
    assert_openai_error(body, "invalid_request")
    assert body["error"]["param"] == "messages[0].content"


async def test_unknown_route(http: ClientSession, agent: Agent) -> None:
    async with http.post(f"{agent.v1}/images/generations", json={}) as response:
        assert response.status == 404
        body = await response.json()
    assert_openai_error(body, "not_found")
    assert "/v1/images/generations" in body["error"]["message"]


async def test_wrong_method(http: ClientSession, agent: Agent) -> None:
    async with http.get(f"{agent.v1}/chat/completions") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert_openai_error(await response.json(), "method_not_allowed")


async def test_body_too_large(http: ClientSession, local: LocalEngine) -> None:
    async with running_agent(local, max_body_bytes=4096) as small:
        big = {"messages": [{"role": "user", "content": "x" * 10_000}]}
        async with http.post(f"{small.v1}/chat/completions", json=big) as response:
            assert response.status == 413
            body = await response.json()
        assert_openai_error(body, "request_too_large")
        assert "4096" in body["error"]["message"]
        # just under the limit is fine
        ok = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        async with http.post(f"{small.v1}/chat/completions", json=ok) as response:
            assert response.status == 200


async def test_context_too_long(http: ClientSession, agent: Agent) -> None:
    # ~3000 tokens of prompt cannot fit the local 2048-token window; forced local: 400.
    text = "hello world " * 1500
    body = {"model": "edge", "messages": [{"role": "user", "content": text}], "max_tokens": 1}
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        assert response.status == 400
        assert_openai_error(await response.json(), "context_length_exceeded")
        assert response.headers["X-Tandem-Served-By"] == "local"


async def test_ollama_paths_use_ollama_shape(http: ClientSession, agent: Agent) -> None:
    async with http.post(f"{agent.url}/api/chat", data=b"nope", headers=JSON) as response:
        assert response.status == 400
        body = await response.json()
    assert isinstance(body["error"], str) and body["error"]
