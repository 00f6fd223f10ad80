"""An edge API with an API key, a daily cloud budget and a warm link to a real worker:
what the access-log, status and browser tests look at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession
from pydantic import SecretStr

from tests.edge_agent.api.harness import Agent, cloud_engine, loaded_engine, running_agent

API_KEY = "status-test-key-" + "k" * 24
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DAILY_BUDGET = 100_000
PROMPT_MARKER = "ZEBRA-PROMPT-5531"
"""In every prompt these tests send: it must never reach a log line or /status.json."""


@asynccontextmanager
async def agent_with_cloud(**settings: Any) -> AsyncIterator[Agent]:
    async with (
        loaded_engine() as local,
        cloud_engine() as cloud,
        running_agent(
            local,
            cloud=cloud,
            api_key=SecretStr(API_KEY),
            cloud_daily_token_budget=DAILY_BUDGET,
            **settings,
        ) as agent,
    ):
        yield agent


def chat(model: str, *, stream: bool = False, max_tokens: int = 8) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Say hi. {PROMPT_MARKER}"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


async def post_chat(http: ClientSession, agent: Agent, body: dict[str, Any]) -> tuple[int, str]:
    """POST a chat completion (read to the end); (status, X-Request-Id)."""
    async with http.post(f"{agent.v1}/chat/completions", json=body, headers=AUTH) as resp:
        await resp.read()
        return resp.status, resp.headers["X-Request-Id"]
