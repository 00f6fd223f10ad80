"""The edge as ``edge_agent.app`` wires it: the cloud serves before the local model loads.

A real signaling app, a real worker (the bundled model) and the edge's own app, all in
this event loop on loopback. The edge's local model load is held by the test (the real
load starts when the test lets it: a disk slow to give up a big GGUF, driven by an event
instead of by time), so every step below happens while the model is *known* to be still
loading, however fast or slow this machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from edge_agent.app import PARTS, create_app
from edge_agent.router import Router
from edge_agent.settings import EdgeSettings
from shared.messages import Role
from signaling.app import create_app as create_signaling
from signaling.settings import SignalingSettings
from tests.edge_agent.api.harness import model_path
from tests.support.apps import SECRET, serving, token
from tests.support.edge import wait_for_workers, worker_app
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

CHAT = {
    "model": "auto",
    "max_tokens": 8,
    "temperature": 0,
    "messages": [{"role": "user", "content": "Name three rivers."}],
}


class HeldLoad:
    """Stands in front of the edge's real ``LocalEngine.load`` until ``release``."""

    def __init__(self, load: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._load = load
        self._gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def __call__(self) -> None:
        self.waiting.set()
        await self._gate.wait()
        await self._load()

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
async def signaling_url() -> AsyncIterator[str]:
    async with serving(create_signaling(SignalingSettings(secret=SecretStr(SECRET)))) as port:
        url = f"ws://127.0.0.1:{port}/v1/signal"
        async with serving(worker_app(url, "worker-1")):
            await wait_for_workers(url, 1)
            yield url


async def _chat(http: aiohttp.ClientSession, url: str, route: str) -> tuple[int, dict[str, Any]]:
    headers = {"X-Tandem-Route": route}
    async with http.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers) as resp:
        body = await resp.json()
        body["headers"] = {k.lower(): v for k, v in resp.headers.items()}
        return resp.status, body


async def test_an_escalated_request_is_served_while_the_local_model_loads(
    signaling_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_path()  # skips without the bundled model
    settings = EdgeSettings(
        signaling=signaling_url,
        token=SecretStr(token(Role.EDGE, "edge-1")),
        ice_host_addresses="127.0.0.1",
        port=0,
    )
    app = create_app(settings)
    parts = app[PARTS]
    held = HeldLoad(parts.local.load)
    monkeypatch.setattr(parts.local, "load", held)
    async with serving(app) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        await asyncio.wait_for(held.waiting.wait(), timeout=30)

        async def health() -> dict[str, Any]:
            async with http.get(f"{url}/healthz") as resp:
                body: dict[str, Any] = await resp.json()
                body["http_status"] = resp.status
                return body

        async def cloud_ready() -> bool:
            return bool((await health())["cloud"] == "ready")

        await eventually(cloud_ready, timeout_s=60, what="the edge linked to the worker")
        # Still loading, and honest about it: 503 for supervisors, the cloud ready.
        loading = await health()
        assert loading["http_status"] == 503 and loading["status"] == "loading"
        assert not parts.local.ready

        status, body = await _chat(http, url, "cloud")
        assert status == 200, body
        assert body["headers"]["x-tandem-served-by"] == "cloud"
        assert body["choices"][0]["message"]["content"].strip()
        assert body["usage"]["completion_tokens"] > 0
        assert not parts.local.ready  # served while the local model had not loaded

        # The router's choice goes to the cloud too, saying why (a prompt it would
        # otherwise keep on the edge).
        status, body = await _chat(http, url, "auto")
        assert status == 200, body
        assert body["headers"]["x-tandem-served-by"] == "cloud"
        assert body["headers"]["x-tandem-route-reason"] == "local-loading"
        assert not parts.local.ready

        # What must run locally is refused with a clear state meanwhile, never hung.
        status, body = await _chat(http, url, "local")
        assert status == 503, body
        assert body["error"]["code"] == "model_loading"
        assert body["headers"]["retry-after"] == "1"
        assert (await health())["status"] == "loading"

        held.release()

        async def loaded() -> bool:
            return bool((await health())["http_status"] == 200)

        await eventually(loaded, timeout_s=120, what="the local model loaded")
        status, body = await _chat(http, url, "local")
        assert status == 200, body
        assert body["headers"]["x-tandem-served-by"] == "local"
        # The router's token head (it checks the GGUF's hash) is attached after the load.
        router = parts.pipeline._router
        assert isinstance(router, Router)
        await eventually(
            lambda: router.token_head is not None, what="the router's token head attached"
        )
