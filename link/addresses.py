"""This host's addresses, the set ICE gathers host candidates from.

Apart from ``link.probe`` (which imports aioice for its STUN and TURN probes) because the
edge watches its addresses from the start, and an edge's start-up is on the path to its
first escalated answer: ifaddr alone costs a few milliseconds, aioice tens.
"""

from __future__ import annotations

import ifaddr

__all__ = ["local_addresses"]


def local_addresses() -> frozenset[str]:
    """This host's IP addresses, loopback and IPv6 link-local ones left out (the set
    ICE gathers host candidates from)."""
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ip.ip.startswith("127."):
                    found.add(ip.ip)
            elif ip.ip[0] != "::1" and not ip.ip[0].lower().startswith("fe80"):
                found.add(ip.ip[0])
    return frozenset(found)
