"""``AddressWatch`` reports an address that went away, once, and nothing else.

The host's address list is scripted here (changing a real interface needs a network
namespace: tests/netns/test_paths.py readdresses a real host end to end)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator

from edge_agent.peers.netwatch import AddressWatch, kernel_announcements
from link.probe import local_addresses
from tests.support.wait import eventually


async def test_a_lost_address_is_reported_once_a_gained_one_never() -> None:
    script = [
        frozenset({"10.0.0.2"}),
        frozenset({"10.0.0.2", "10.0.0.77"}),  # gained (DHCP adds one): nothing to do
        frozenset({"10.0.0.77"}),  # 10.0.0.2 lost: report it
    ]
    polls = 0

    def addresses() -> frozenset[str]:
        nonlocal polls
        polls += 1
        return script[min(polls, len(script)) - 1]

    reported: list[frozenset[str]] = []

    async def on_lost(lost: frozenset[str]) -> None:
        reported.append(lost)

    task = asyncio.ensure_future(AddressWatch(0.01, on_lost, addresses).run())
    try:
        await eventually(lambda: polls > len(script) + 2, what="the watch polled past the script")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert reported == [frozenset({"10.0.0.2"})]


def test_local_addresses_leave_out_loopback() -> None:
    found = local_addresses()
    assert "127.0.0.1" not in found and "::1" not in found
    assert all(not a.lower().startswith("fe80") for a in found)


async def test_an_announced_change_is_looked_at_without_waiting_for_the_poll() -> None:
    """The kernel's announcement (scripted here) makes the watch look at once: with an
    hour-long poll, only the announcement explains the loss being reported. A change
    that loses nothing but adds an address goes to ``on_gained``."""
    current = {"10.0.0.2"}
    announced = asyncio.Event()
    lost_seen: list[frozenset[str]] = []
    changes = 0

    @contextlib.contextmanager
    def announcements() -> Iterator[asyncio.Event | None]:
        yield announced

    async def on_lost(lost: frozenset[str]) -> None:
        lost_seen.append(lost)

    def on_gained() -> None:
        nonlocal changes
        changes += 1

    looks = 0

    def addresses() -> frozenset[str]:
        nonlocal looks
        looks += 1
        return frozenset(current)

    watch = AddressWatch(
        3600,
        on_lost,
        addresses,
        on_gained=on_gained,
        announcements=announcements,
    )
    task = asyncio.ensure_future(watch.run())
    try:
        await eventually(lambda: looks == 1, what="the watch's first look")
        current.add("10.0.0.77")  # the new address first, as DHCP and tests/netns do
        announced.set()
        await eventually(lambda: changes == 1, what="the gained address announced")
        current.discard("10.0.0.2")
        announced.set()
        await eventually(lambda: lost_seen, what="the lost address reported")
        assert lost_seen == [frozenset({"10.0.0.2"})] and changes == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_kernel_announcements_open_on_linux() -> None:
    with kernel_announcements() as announced:
        if sys.platform == "linux":
            assert announced is not None  # no privilege is needed to listen
