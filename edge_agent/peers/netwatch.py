"""``AddressWatch``: notice at once when this host loses an address.

When a laptop moves from Wi-Fi to LTE or a DHCP lease renews with a new address, every
connection made from the old one is dead, but nothing says so: TCP retransmits for
minutes, the signaling WebSocket's heartbeat takes tens of seconds, ICE consent checks
about thirty. The watch polls the host's addresses (one ``getifaddrs`` call, every
``poll_s``) and reports an address that went away, so that the pool can open a new link
from the new address right away (a new session: the relay first, then WebRTC) instead
of waiting for the old one to be declared dead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from link.addresses import local_addresses

__all__ = ["AddressWatch"]

log = logging.getLogger(__name__)


class AddressWatch:
    """Calls ``on_lost`` with the addresses that disappeared since the last poll."""

    def __init__(
        self,
        poll_s: float,
        on_lost: Callable[[frozenset[str]], Awaitable[None]],
        addresses: Callable[[], frozenset[str]] = local_addresses,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self._poll_s = poll_s
        self._on_lost = on_lost
        self._addresses = addresses

    async def run(self) -> None:
        """Until cancelled."""
        known = self._addresses()
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                now = self._addresses()
            except OSError as exc:  # getifaddrs can fail while interfaces change
                log.debug("cannot list local addresses: %s", exc)
                continue
            lost, known = known - now, now
            if lost:
                log.warning(
                    "local address %s gone (network change): relinking from %s",
                    ", ".join(sorted(lost)),
                    ", ".join(sorted(now)) or "no address yet",
                )
                try:
                    await self._on_lost(lost)
                except Exception:  # a bug must not stop the watch for good
                    log.exception("reacting to a network change failed")
