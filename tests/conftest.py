"""Test-wide setup."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio

from link import DataChannelLink
from tests.support.rtc import open_pair

# As inference.LlamaRunner does before loading llama.cpp: passive OpenMP waiting, so
# that tests running beside other CPU work (this suite starts several processes on a
# 2-core machine) do not crawl through spinning barriers. Set before anything imports
# llama_cpp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[DataChannelLink, DataChannelLink]]:
    """An edge/worker data-channel pair over loopback (link and worker tests), closed after."""
    edge, worker = await open_pair()
    try:
        yield edge, worker
    finally:
        await edge.aclose()
        await worker.aclose()
