"""``AddressWatch``: notice at once when this host loses an address.

When a laptop moves from Wi-Fi to LTE or a DHCP lease renews with a new address, every
connection made from the old one is dead, but nothing says so: TCP retransmits for
minutes, the signaling WebSocket's heartbeat takes tens of seconds, ICE consent checks
about thirty. The watch lists the host's addresses (one ``getifaddrs`` call) and reports
an address that went away, so that the pool can open a new link from the new address
right away (a new session: the relay first, then WebRTC) instead of waiting for the old
one to be declared dead.

It lists them every ``poll_s``, and on Linux also as soon as the kernel announces an
address change (a netlink socket subscribed to the address groups: no privilege
needed), so a change is seen within milliseconds rather than half a poll on average.
An address gained without one lost is reported to ``on_gained``: a reconnect that
failed because the new network was not ready yet may succeed now. (Only a new address:
routes and address lifetimes are refreshed all the time, by every router advertisement,
and must not turn a backoff into a retry storm.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator

from link.probe import local_addresses

__all__ = ["AddressWatch", "kernel_announcements"]

log = logging.getLogger(__name__)

# <linux/rtnetlink.h>: multicast groups of NETLINK_ROUTE (bitmask form, for bind()).
_RTMGRP_IPV4_IFADDR = 0x10
_RTMGRP_IPV6_IFADDR = 0x100
_NETLINK_ROUTE = 0

SETTLE_S = 0.05
"""After an announcement, wait this long for the rest of its burst (an address added
and the old one removed come as several messages) before listing."""


@contextlib.contextmanager
def kernel_announcements() -> Iterator[asyncio.Event | None]:
    """An event set whenever the kernel announces an address change, while the context
    is open; ``None`` where there is no netlink (not Linux, or refused)."""
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        yield None
        return
    groups = _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR
    try:
        sock = socket.socket(family, socket.SOCK_RAW, _NETLINK_ROUTE)
        sock.setblocking(False)
        sock.bind((0, groups))
    except OSError as exc:
        log.debug("no netlink address announcements (%s); polling only", exc)
        yield None
        return
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    def readable() -> None:
        with contextlib.suppress(OSError):  # drained (BlockingIOError), or overrun (ENOBUFS)
            while sock.recv(65536):
                pass
        event.set()

    try:
        loop.add_reader(sock.fileno(), readable)
    except (NotImplementedError, OSError):  # a loop without add_reader
        sock.close()
        yield None
        return
    try:
        yield event
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


class AddressWatch:
    """Calls ``on_lost`` with the addresses that disappeared since the last look, else
    ``on_gained`` (if given) when some appeared."""

    def __init__(
        self,
        poll_s: float,
        on_lost: Callable[[frozenset[str]], Awaitable[None]],
        addresses: Callable[[], frozenset[str]] = local_addresses,
        *,
        on_gained: Callable[[], None] | None = None,
        announcements: Callable[
            [], contextlib.AbstractContextManager[asyncio.Event | None]
        ] = kernel_announcements,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self._poll_s = poll_s
        self._on_lost = on_lost
        self._addresses = addresses
        self._on_gained = on_gained
        self._announcements = announcements

    async def run(self) -> None:
        """Until cancelled."""
        with self._announcements() as announced:
            known = self._addresses()
            while True:
                await self._next_look(announced)
                try:
                    now = self._addresses()
                except OSError as exc:  # getifaddrs can fail while interfaces change
                    log.debug("cannot list local addresses: %s", exc)
                    continue
                lost, gained, known = known - now, now - known, now
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
                elif gained and self._on_gained is not None:
                    self._on_gained()

    async def _next_look(self, announced: asyncio.Event | None) -> None:
        """Until the next look: ``poll_s``, or sooner when the kernel announces a change
        (once its burst has settled)."""
        if announced is None:
            await asyncio.sleep(self._poll_s)
            return
        try:
            async with asyncio.timeout(self._poll_s):
                await announced.wait()
        except TimeoutError:
            return
        await asyncio.sleep(SETTLE_S)
        announced.clear()
