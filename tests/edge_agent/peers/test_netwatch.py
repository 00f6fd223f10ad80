"""``AddressWatch`` reports an address that went away, once, and nothing else.

The host's address list is scripted here (changing a real interface needs a network
namespace: tests/netns/test_paths.py readdresses a real host end to end)."""

from __future__ import annotations

import asyncio

from edge_agent.peers.netwatch import AddressWatch
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
