"""Fixtures for link tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from link import DataChannelLink
from tests.support.rtc import open_pair


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[DataChannelLink, DataChannelLink]]:
    edge, worker = await open_pair()
    try:
        yield edge, worker
    finally:
        await edge.aclose()
        await worker.aclose()
