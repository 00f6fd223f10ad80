"""One loaded model and one running agent per test module (loading takes about a second)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import ClientSession

from edge_agent.engines.local import LocalEngine
from tests.edge_agent.api.harness import Agent, loaded_engine, running_agent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def local() -> AsyncIterator[LocalEngine]:
    async with loaded_engine() as engine:
        yield engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(local: LocalEngine) -> AsyncIterator[Agent]:
    async with running_agent(local) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session
