"""Preemption notices from (fake) AWS, GCP and Azure metadata services, and telling
which cloud a machine is on."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from cloud_worker.spot import NOTICES, Provider, detect, gcp_notice, watch
from tests.support.apps import serving
from tests.support.metadata import Notice, metadata_app
from tests.support.wait import eventually


@pytest.mark.parametrize(
    ("provider", "expected"), [("aws", "terminate"), ("gcp", "preempted"), ("azure", "preempt")]
)
async def test_a_notice_is_noticed(provider: Provider, expected: str) -> None:
    notice = Notice()
    async with serving(metadata_app(notice, provider)) as port:
        base = f"http://127.0.0.1:{port}"
        check = NOTICES[provider](base)
        heard: asyncio.Queue[str] = asyncio.Queue()
        watcher = asyncio.get_running_loop().create_task(
            watch(check, heard.put_nowait, poll_s=0.05)
        )
        try:
            await eventually(lambda: notice.polls >= 3, what="the watcher polled three times")
            assert heard.empty(), "no notice yet: the watcher must keep quiet"
            notice.given = True
            assert await asyncio.wait_for(heard.get(), 30) == expected
            await asyncio.wait_for(watcher, 30)  # it stops after the one notice
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def test_an_unreachable_metadata_service_is_polled_again() -> None:
    heard: list[str] = []
    unreachable = gcp_notice("http://127.0.0.1:9")
    tries = 0

    async def check(session: aiohttp.ClientSession) -> str | None:
        nonlocal tries
        tries += 1
        return await unreachable(session)

    watcher = asyncio.get_running_loop().create_task(watch(check, heard.append, poll_s=0.05))
    await eventually(lambda: tries >= 3, what="the watcher tried three times")
    assert not watcher.done() and heard == []
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
async def test_the_cloud_is_detected_by_its_own_metadata_handshake(provider: Provider) -> None:
    async with serving(metadata_app(Notice(), provider)) as port:
        assert await detect(f"http://127.0.0.1:{port}") == provider


async def test_no_metadata_service_means_no_cloud() -> None:
    async with serving(metadata_app(Notice(), "none")) as port:  # answers 404 to all
        assert await detect(f"http://127.0.0.1:{port}") is None
    assert await detect("http://127.0.0.1:9", timeout_s=1) is None  # nothing listens
