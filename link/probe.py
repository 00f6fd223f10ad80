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

from aioice import stun, turn
from aioice.stun import TransactionFailed, TransactionTimeout

from link.addresses import local_addresses
from shared.messages import IceServer

__all__ = [
    "choose_turn_transport",
    "local_addresses",
    "mappings",
    "parse_host_port",
    "stun_binding",
    "tcp_reachable",
    "turn_allocate",
]


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


class _Replies(asyncio.DatagramProtocol):
    """Collects STUN replies by transaction id, on one local socket."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future[stun.Message]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        future = self.waiting.get(message.transaction_id)
        if future is not None and not future.done():
            future.set_result(message)


async def mappings(
    servers: Sequence[tuple[str, int]], *, timeout_s: float = 1.0
) -> list[tuple[str, int] | None]:
    """The address each STUN server sees for ONE local socket.

    The same mapping for every destination means an endpoint-independent NAT ("easy":
    hole punching works); a different one per destination means a symmetric NAT
    ("hard": only a relay gets through).
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Replies, local_addr=("0.0.0.0", 0))
    results: list[tuple[str, int] | None] = []
    try:
        for host, port in servers:
            request = stun.Message(
                message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST
            )
            future: asyncio.Future[stun.Message] = loop.create_future()
            protocol.waiting[request.transaction_id] = future
            mapped = None
            for _ in range(2):
                try:
                    transport.sendto(bytes(request), (host, port))
                except OSError:
                    break
                with contextlib.suppress(TimeoutError):
                    reply = await asyncio.wait_for(asyncio.shield(future), timeout_s / 2)
                    value = reply.attributes.get("XOR-MAPPED-ADDRESS")
                    mapped = (str(value[0]), int(value[1])) if value else None
                    break
            results.append(mapped)
    finally:
        transport.close()
    return results


async def turn_allocate(
    host: str, port: int, *, username: str, password: str, transport: str, timeout_s: float = 3.0
) -> tuple[str, int] | None:
    """Allocate (then release) a TURN relay; its address, or ``None`` if refused/unreachable.

    ``transport`` is ``udp``, ``tcp`` or ``tls`` (TCP with the TLS aiortc uses for
    ``turns:``: the system's trusted CAs, the server's name or address verified)."""
    try:
        async with asyncio.timeout(timeout_s):
            relay, _ = await turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=(host, port),
                username=username,
                password=password,
                transport="tcp" if transport == "tls" else transport,
                ssl=transport == "tls",
            )
    except (OSError, TimeoutError, ValueError, TransactionFailed, TransactionTimeout):
        return None
    try:
        address = relay.get_extra_info("sockname")
        return (str(address[0]), int(address[1])) if address else None
    finally:
        relay.close()


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


async def tcp_reachable(host: str, port: int, *, timeout_s: float = 1.5) -> bool:
    """Whether a TCP connection to ``host:port`` opens (then closed at once)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def choose_turn_transport(ice_servers: Sequence[IceServer], preference: str) -> str:
    """``udp``, ``tcp`` or ``tls``: ``preference`` unless it is ``auto``, then what the
    network allows: UDP if a STUN request to the TURN server is answered, else TCP if its
    TCP port opens (or no ``turns:`` URL is offered), else TLS (networks that pass only
    HTTPS: a ``turns:`` URL on 443)."""
    if preference != "auto":
        return preference
    urls = [u for s in ice_servers for u in s.urls]
    turn = [u for u in urls if u.lower().startswith("turn:")]
    tls = [u for u in urls if u.lower().startswith("turns:")]
    if not turn:
        return "tls" if tls else "udp"
    host, port = parse_host_port(turn[0])
    if await stun_binding(host, port) is not None:
        return "udp"
    tcp = [u for u in turn if "transport=tcp" in u.lower()]
    if not tls or (tcp and await tcp_reachable(*parse_host_port(tcp[0]))):
        return "tcp"
    return "tls"
