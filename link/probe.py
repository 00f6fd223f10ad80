"""Network probes: is UDP to a STUN/TURN server open, and what address does it see?

The edge asks before each WebRTC attempt which TURN transport to use (aiortc takes
one): a STUN Binding request over UDP that gets no answer within a second means the
network blocks outbound UDP, so TURN must go over TCP. ``edge-agent netcheck`` uses the
same probes to describe the NAT.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aioice import stun

from shared.messages import IceServer

__all__ = ["choose_turn_transport", "parse_host_port", "stun_binding"]


def parse_host_port(url: str, default_port: int = 3478) -> tuple[str, int]:
    """``turn:host:3478?transport=tcp`` / ``stun:host`` -> (host, port)."""
    _, _, rest = url.partition(":")
    hostport = rest.partition("?")[0]
    host, sep, port = hostport.rpartition(":")
    if not sep:
        return hostport, default_port
    return host.strip("[]"), int(port)


class _Once(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


async def stun_binding(
    host: str, port: int, *, timeout_s: float = 1.0, local: tuple[str, int] | None = None
) -> tuple[str, int] | None:
    """The address a STUN server sees us at, over UDP; ``None`` if it did not answer."""
    loop = asyncio.get_running_loop()
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Once, remote_addr=(host, port), local_addr=local
        )
    except OSError:
        return None
    try:
        for _ in range(2):  # one retransmission: a single lost datagram is not "blocked"
            transport.sendto(bytes(request))
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(asyncio.shield(protocol.reply), timeout_s / 2)
                try:
                    reply = stun.parse_message(data)
                except ValueError:
                    return None
                mapped = reply.attributes.get("XOR-MAPPED-ADDRESS")
                return (str(mapped[0]), int(mapped[1])) if mapped else None
        return None
    except OSError:
        return None
    finally:
        transport.close()


async def choose_turn_transport(ice_servers: Sequence[IceServer], preference: str) -> str:
    """``udp`` or ``tcp``: ``preference`` unless it is ``auto``, then what the network allows."""
    if preference != "auto":
        return preference
    turn = [u for s in ice_servers for u in s.urls if u.startswith("turn:")]
    if not turn:
        return "udp"
    host, port = parse_host_port(turn[0])
    return "udp" if await stun_binding(host, port) is not None else "tcp"
