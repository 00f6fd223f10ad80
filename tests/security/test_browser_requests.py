"""Issue 13, item 8: web pages must not drive the edge's API.

Each attack is the request a browser sends for a page on another site: a "simple" POST
(``text/plain`` or a form: no CORS preflight), a DNS-rebound page (its own name in
``Host``), a cross-origin ``fetch`` (an ``Origin``). They go to a real ``edge-agent``
process; before the fix each was served (the text/plain POST generated an answer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from devstack.stack import free_port
from tests.edge_agent.api.harness import cloud_engine, loaded_engine, running_agent
from tests.support.wait import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

APP = "http://app.example:3000"
"""The one web origin the agent is told to serve (``--cors-origin``)."""
EVIL = "http://evil.example"
CHAT = {"model": "edge", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
BODY = b'{"model": "cloud", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}'


@dataclass(frozen=True)
class Edge:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def edge_process() -> Iterator[Edge]:
    """``edge-agent serve`` (local model only) with one extra host name and one origin."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "edge_agent",
        "serve",
        "--port",
        str(port),
        "--allowed-host",
        "edge.lan,proxy.example:443",
        "--cors-origin",
        APP,
    ]
    proc = subprocess.Popen(command, env=dict(os.environ), stderr=subprocess.DEVNULL)
    try:
        yield Edge(port)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def edge(edge_process: Edge) -> AsyncIterator[Edge]:
    async with ClientSession() as http:

        async def healthy() -> bool:
            try:
                async with http.get(f"{edge_process.url}/healthz") as response:
                    return response.status == 200
            except OSError:
                return False

        await eventually(healthy, timeout_s=120, what="the edge agent healthy")
    yield edge_process


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def send(
    http: ClientSession, method: str, url: str, data: bytes | None = None, /, **headers: str
) -> tuple[int, dict[str, str], Any]:
    async with http.request(method, url, data=data, headers=headers) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        return (
            response.status,
            dict(response.headers),
            (json.loads(text) if is_json else text),
        )


async def test_a_simple_text_plain_post_is_refused(http: ClientSession, edge: Edge) -> None:
    """``fetch(url, {method: "POST", body})`` from any page sends ``text/plain`` and
    needs no preflight: before the fix the agent generated (and, with ``model: cloud``,
    spent the cloud budget). Now 415, in each dialect's error shape; forms too."""
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        status, _, body = await send(
            http,
            "POST",
            f"{edge.url}/v1/chat/completions",
            BODY,
            **{"Content-Type": content_type},
        )
        assert status == 415, body
        assert body["error"]["code"] == "unsupported_media_type"
        status, _, body = await send(
            http, "POST", f"{edge.url}/api/chat", BODY, **{"Content-Type": content_type}
        )
        assert status == 415 and "application/json" in body["error"], body
    status, _, body = await send(http, "POST", f"{edge.url}/v1/chat/completions", BODY)
    assert status == 415, body  # no Content-Type at all


async def test_a_cross_origin_page_is_refused(http: ClientSession, edge: Edge) -> None:
    """The same POST as a page on another site sends it: with its ``Origin``. Before the
    fix it was served; now 403 whatever the content type, and its preflight too."""
    for content_type in ("text/plain;charset=UTF-8", "application/json"):
        status, headers, body = await send(
            http,
            "POST",
            f"{edge.url}/v1/chat/completions",
            BODY,
            Origin=EVIL,
            **{"Content-Type": content_type},
        )
        assert status == 403 and body["error"]["code"] == "forbidden", body
        assert "Access-Control-Allow-Origin" not in headers
    status, headers, _ = await send(
        http,
        "OPTIONS",
        f"{edge.url}/v1/chat/completions",
        Origin=EVIL,
        **{
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


async def test_a_dns_rebound_page_is_refused(http: ClientSession, edge: Edge) -> None:
    """A page of evil.example whose name now resolves to 127.0.0.1 is same-origin with
    the agent: no ``Origin`` on a GET, JSON allowed. Its ``Host`` gives it away: before
    the fix it read the model list and could generate; now 403. /healthz stays open."""
    for host in (
        f"evil.example:{edge.port}",
        "evil.example",
        "edge.lan.evil.example",
        "proxy.example:80",  # an --allowed-host given with a port is held to it
    ):
        status, _, body = await send(http, "GET", f"{edge.url}/v1/models", Host=host)
        assert status == 403, (host, body)
        status, _, body = await send(
            http,
            "POST",
            f"{edge.url}/api/chat",
            BODY,
            Host=host,
            **{"Content-Type": "application/json"},
        )
        assert status == 403 and "--allowed-host" in body["error"], body
    status, _, _ = await send(http, "GET", f"{edge.url}/healthz", Host="evil.example")
    assert status == 200


async def test_what_the_agent_answers_to(http: ClientSession, edge: Edge) -> None:
    """Clients that are not browsers, under every name the agent is reached by."""
    for host in (
        f"127.0.0.1:{edge.port}",
        f"localhost:{edge.port}",
        f"[::1]:{edge.port}",
        "edge.lan",
        f"localhost:{edge.port + 1}",  # Docker or SSH forwarding from another port
        f"EDGE.lan:{edge.port}",
        "proxy.example:443",
    ):
        status, _, body = await send(http, "GET", f"{edge.url}/v1/models", Host=host)
        assert status == 200, (host, body)
    async with http.post(f"{edge.url}/v1/chat/completions", json=CHAT) as response:
        assert response.status == 200


async def test_an_allowed_origin_gets_cors(http: ClientSession, edge: Edge) -> None:
    """``--cors-origin`` pages work as a browser needs: the preflight is answered (with
    the headers the client asks for, the OpenAI SDK's own among them), and answers,
    errors and streams carry Access-Control-Allow-Origin and the X-Tandem-* headers."""
    asked = "authorization, content-type, x-stainless-os"
    status, headers, _ = await send(
        http,
        "OPTIONS",
        f"{edge.url}/v1/chat/completions",
        Origin=APP,
        **{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": asked},
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Headers"] == asked
    assert "POST" in headers["Access-Control-Allow-Methods"]
    for stream in (False, True):
        async with http.post(
            f"{edge.url}/v1/chat/completions",
            json={**CHAT, "stream": stream},
            headers={"Origin": APP},
        ) as response:
            await response.read()
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == APP
            assert "X-Tandem-Served-By" in response.headers["Access-Control-Expose-Headers"]
            assert "Origin" in response.headers.getall("Vary")
    async with http.post(
        f"{edge.url}/v1/chat/completions",
        json={"model": "nope", **{k: v for k, v in CHAT.items() if k != "model"}},
        headers={"Origin": APP},
    ) as response:
        assert response.status == 404
        assert response.headers["Access-Control-Allow-Origin"] == APP


async def test_a_preflight_needs_no_api_key() -> None:
    """With --api-key, the preflight (which carries no key) is still answered for an
    allowed origin; the request itself still needs the key."""
    key = "k" * 32
    async with (
        loaded_engine() as local,
        running_agent(local, api_key=key, cors_origin=APP) as agent,
        ClientSession() as http,
    ):
        url = f"{agent.v1}/chat/completions"
        preflight = {"Origin": APP, "Access-Control-Request-Method": "POST"}
        async with http.options(url, headers=preflight) as response:
            assert response.status == 204
        async with http.post(url, json=CHAT, headers={"Origin": APP}) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == APP
        auth = {"Origin": APP, "Authorization": f"Bearer {key}"}
        async with http.post(url, json=CHAT, headers=auth) as response:
            assert response.status == 200


async def test_forced_cloud_requests_count_against_the_daily_budget() -> None:
    """A page that could force ``model: cloud`` would spend the budget: forced requests
    are counted like any other (they were before this change too: ``Served._account``).
    With a 1-token budget, an auto request with a prompt past
    --auto-local-max-prompt-tokens goes to the cloud; after one forced cloud request, the
    same auto request is answered locally, budget-exhausted."""
    auto = {**CHAT, "model": "auto"}
    settings: dict[str, Any] = {
        "cloud_daily_token_budget": 1,
        "auto_local_max_prompt_tokens": 0,
    }
    async with loaded_engine() as local, cloud_engine() as cloud, ClientSession() as http:
        async with (
            running_agent(local, cloud=cloud, **settings) as agent,
            http.post(f"{agent.v1}/chat/completions", json=auto) as response,
        ):
            assert response.headers["X-Tandem-Served-By"] == "cloud"
        async with running_agent(local, cloud=cloud, **settings) as agent:
            url = f"{agent.v1}/chat/completions"
            async with http.post(url, json={**CHAT, "model": "cloud"}) as response:
                assert response.status == 200
                assert response.headers["X-Tandem-Route-Reason"] == "forced-cloud"
            async with http.post(url, json=auto) as response:
                assert response.headers["X-Tandem-Served-By"] == "local"
                assert response.headers["X-Tandem-Route-Reason"] == "budget-exhausted"
