"""Preemption notices from (fake) AWS and GCP metadata services."""

from __future__ import annotations

import asyncio

import pytest

from cloud_worker.spot import aws_notice, gcp_notice, watch
from tests.support.apps import serving
from tests.support.metadata import Notice, metadata_app


@pytest.mark.parametrize(("provider", "expected"), [("aws", "terminate"), ("gcp", "preempted")])
async def test_a_notice_is_noticed(provider: str, expected: str) -> None:
    notice = Notice()
    async with serving(metadata_app(notice)) as port:
        base = f"http://127.0.0.1:{port}"
        check = aws_notice(base) if provider == "aws" else gcp_notice(base)
        heard: asyncio.Queue[str] = asyncio.Queue()
        watcher = asyncio.get_running_loop().create_task(
            watch(check, heard.put_nowait, poll_s=0.05)
        )
        try:
            await asyncio.sleep(0.3)
            assert heard.empty(), "no notice yet: the watcher must keep quiet"
            notice.given = True
            assert await asyncio.wait_for(heard.get(), 5) == expected
            await asyncio.wait_for(watcher, 1)  # it stops after the one notice
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def test_an_unreachable_metadata_service_is_polled_again() -> None:
    heard: list[str] = []
    watcher = asyncio.get_running_loop().create_task(
        watch(gcp_notice("http://127.0.0.1:9"), heard.append, poll_s=0.05)
    )
    await asyncio.sleep(0.3)
    assert not watcher.done() and heard == []
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
