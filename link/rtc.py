"""The WebRTC handshake, both sides, and which path the connection took.

aiortc gathers every candidate inside ``setLocalDescription`` (no trickle ICE), so one
offer and one answer through signaling is the whole exchange. ``iceServers=None``
makes aiortc fall back to a public STUN server: we always pass an explicit list, empty
on loopback.

aiortc has no public way to ask which candidate pair ICE nominated, so ``path_of`` reads
two private attributes (``RTCIceTransport._connection``, aioice's
``Connection._nominated``), present from aiortc 1.9 / aioice 0.9 to the versions
``pyproject.toml`` caps. If a later version moves them, the path is reported as
``unknown`` (with one warning), never guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from link.base import LinkClosed, PathKind
from link.datachannel import DataChannelLink
from link.framed import DEFAULT_QUEUED_FRAMES
from link.probe import choose_turn_transport
from shared.messages import IceServer
from shared.settings import PeerSettings

__all__ = [
    "IcePolicy",
    "RtcAnswer",
    "RtcOffer",
    "accept_offer",
    "allocation_transport",
    "create_offer",
    "parse_addresses",
    "path_of",
    "quiet_webrtc_logs",
    "rtc_configuration",
    "turn_transport_of",
    "without_relay_candidates",
]

log = logging.getLogger(__name__)

CHANNEL_LABEL = "tandem"

# aioice gathers host candidates on every interface except 127.0.0.1 and offers no way
# to choose. Deployments need one (a Pi with a LAN and a VPN interface), and so does a
# stack that must stay on loopback. Its address lookup is wrapped once; the wrapper
# reads a context variable set only around our own gathering calls, so one process can
# run connections with different choices at once.
_HOST_ADDRESSES: ContextVar[tuple[str, ...] | None] = ContextVar(
    "tandem_ice_host_addresses", default=None
)
_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _HOST_ADDRESSES.get()
    if chosen is None:
        return list(_aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
    return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]


if aioice.ice.get_host_addresses is not _host_addresses:
    aioice.ice.get_host_addresses = _host_addresses


def parse_addresses(value: str | None) -> tuple[str, ...] | None:
    """``"127.0.0.1, ::1"`` -> ``("127.0.0.1", "::1")``; empty or ``None`` -> ``None`` (all);
    ``"none"`` -> ``()``: no host candidates at all (only TURN, or the relay)."""
    if not value or not value.strip():
        return None
    if value.strip().lower() == "none":
        return ()
    return tuple(a.strip() for a in value.split(",") if a.strip())


@contextlib.contextmanager
def _gathering_on(addresses: tuple[str, ...] | None) -> Iterator[None]:
    token = _HOST_ADDRESSES.set(addresses)
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)


def quiet_webrtc_logs(level: str) -> None:
    """aioice logs every ICE check at INFO: keep that for DEBUG runs, not for journald."""
    if level != "DEBUG":
        for name in ("aioice", "aiortc"):
            logging.getLogger(name).setLevel(logging.WARNING)


def turn_transport_of(url: str) -> str:
    """``udp`` or ``tcp`` for a ``turn:`` URL (RFC 7065: UDP unless ``?transport=``);
    ``tls`` for a ``turns:`` one over TCP (its default); ``dtls`` for one over UDP, which
    aiortc does not support (it skips the URL)."""
    scheme, _, rest = url.partition(":")
    _, _, query = rest.partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if scheme.lower() == "turns":
        return "tls" if params.get("transport", "tcp").lower() == "tcp" else "dtls"
    return params.get("transport", "udp").lower()


def rtc_configuration(
    ice_servers: Sequence[IceServer], *, turn_transport: str = "udp"
) -> RTCConfiguration:
    """An explicit ``RTCConfiguration`` (never ``None``: see the module docstring).

    aiortc uses only the first TURN URL it is given, so URLs of the preferred
    ``turn_transport`` go first (TCP when the network blocks UDP, TLS when it passes
    only HTTPS).
    """

    def order(urls: tuple[str, ...]) -> list[str]:
        return sorted(
            urls, key=lambda u: u.startswith("turn") and turn_transport_of(u) != turn_transport
        )

    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=order(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers
        ]
    )


def allocation_transport(config: RTCConfiguration) -> str | None:
    """``udp``, ``tcp`` or ``tls``: how aiortc reaches the TURN server of ``config``
    (``None``: none).

    aiortc allocates on one TURN server only, the first usable URL in order (``turn:``
    over UDP or TCP, ``turns:`` over TCP), so our own configuration says which.
    """
    for server in config.iceServers or ():
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            if not url.startswith("turn"):
                continue
            transport = turn_transport_of(url)
            if transport in ("udp", "tcp", "tls"):
                return transport
    return None


@functools.cache
def _warn_unknown_path(reason: str) -> None:
    """Once per process and reason: the lookup is the same for every connection."""
    log.warning(
        "cannot tell which ICE candidate pair is in use (%s): aiortc/aioice internals "
        "moved? Reporting path 'unknown'; check the aiortc version against pyproject.toml",
        reason,
    )


def path_of(pc: Any, turn_transport: str | None) -> PathKind:
    """Which path the nominated ICE pair of ``pc`` uses: relayed through TURN or not.

    ``turn_transport`` is ``allocation_transport`` of the configuration ``pc`` was made
    with: how our own allocation, if the pair uses it, reaches the TURN server.
    ``PathKind.UNKNOWN`` when the pair cannot be read.
    """
    try:
        # Private in aiortc and aioice (no public API): see the module docstring.
        pair = pc.sctp.transport.transport._connection._nominated[1]
        local_type = pair.local_candidate.type
        remote_type = pair.remote_candidate.type
    except (AttributeError, KeyError, TypeError) as exc:
        _warn_unknown_path(f"{exc.__class__.__name__}: {exc}")
        return PathKind.UNKNOWN
    if local_type == "relay":  # our allocation
        if turn_transport == "tcp":
            return PathKind.TURN_TCP
        if turn_transport == "tls":
            return PathKind.TURN_TLS
        if turn_transport == "udp":
            return PathKind.TURN_UDP
        _warn_unknown_path("a relayed pair without a configured TURN server")
        return PathKind.UNKNOWN
    if remote_type == "relay":  # the peer's allocation; how it reaches its TURN is its own
        return PathKind.TURN_UDP
    return PathKind.DIRECT


@dataclass
class RtcOffer:
    """The offering side's half-open connection, waiting for the answer."""

    pc: Any
    channel: Any
    sdp: str
    direct_only: bool = False
    turn_transport: str | None = None
    """``allocation_transport`` of the configuration ``pc`` was made with."""
    _opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def complete(
        self,
        answer_sdp: str,
        *,
        timeout_s: float,
        max_frame_bytes: int,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        label: str = "",
    ) -> DataChannelLink:
        """Apply the answer and wait for the data channel to open (ICE, DTLS, SCTP)."""
        if self.direct_only:
            answer_sdp = without_relay_candidates(answer_sdp)
        try:
            async with asyncio.timeout(timeout_s):
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=answer_sdp, type="answer")
                )
                if self.channel.readyState != "open":
                    await self._opened.wait()
        except BaseException:
            await self.pc.close()
            raise
        if self.channel.readyState != "open":
            await self.pc.close()
            raise LinkClosed("data channel closed during the handshake")
        return DataChannelLink(
            self.channel,
            self.pc,
            path=path_of(self.pc, self.turn_transport),
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            label=label,
        )

    async def aclose(self) -> None:
        await self.pc.close()


def without_relay_candidates(sdp: str) -> str:
    """``sdp`` minus its TURN-relayed ICE candidates."""
    lines = sdp.split("\r\n")
    kept = [ln for ln in lines if not (ln.startswith("a=candidate:") and " typ relay" in ln)]
    return "\r\n".join(kept)


def _stun_only(ice_servers: Sequence[IceServer]) -> list[IceServer]:
    out = []
    for server in ice_servers:
        urls = tuple(u for u in server.urls if u.startswith("stun"))
        if urls:
            out.append(
                server.model_copy(update={"urls": urls, "username": None, "credential": None})
            )
    return out


@dataclass(frozen=True)
class IcePolicy:
    """How this peer gathers candidates: which local addresses (``None``: all but
    loopback) and which TURN transport it prefers."""

    host_addresses: tuple[str, ...] | None = None
    turn_transport: str = "auto"
    direct_only: bool = False
    """No TURN on either side: no allocation of ours, and the answer's relay candidates
    dropped. For trying to lift a TURN-relayed link to a direct one: aioice nominates
    the first pair whose check succeeds, so under load a relay pair can win the race
    against a hole-punched one that would also have worked."""

    @classmethod
    def from_settings(cls, settings: PeerSettings) -> IcePolicy:
        return cls(
            host_addresses=parse_addresses(settings.ice_host_addresses),
            turn_transport=settings.turn_transport,
        )


async def create_offer(
    ice_servers: Sequence[IceServer], policy: IcePolicy = IcePolicy()
) -> RtcOffer:
    """Start a connection as the offering side (the edge)."""
    if policy.direct_only:
        ice_servers = _stun_only(ice_servers)
    transport = await choose_turn_transport(ice_servers, policy.turn_transport)
    config = rtc_configuration(ice_servers, turn_transport=transport)
    pc = RTCPeerConnection(config)
    channel = pc.createDataChannel(CHANNEL_LABEL, ordered=True)
    offer = RtcOffer(
        pc=pc,
        channel=channel,
        sdp="",
        direct_only=policy.direct_only,
        turn_transport=allocation_transport(config),
    )
    channel.on("open", offer._opened.set)
    channel.on("close", offer._opened.set)

    @pc.on("connectionstatechange")
    def _failed() -> None:  # ICE gave up: stop waiting now, not at the deadline
        if pc.connectionState in ("failed", "closed"):
            offer._opened.set()

    with _gathering_on(policy.host_addresses):
        await pc.setLocalDescription(await pc.createOffer())
    offer.sdp = pc.localDescription.sdp
    return offer


@dataclass
class RtcAnswer:
    """The answering side's connection: the SDP to send back and the link to come."""

    pc: Any
    sdp: str
    link: asyncio.Future[DataChannelLink]

    async def wait_link(self, timeout_s: float) -> DataChannelLink:
        """The link once the offerer's channel arrives; closes the connection on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self.link)
        except BaseException:
            self.link.cancel()
            await self.pc.close()
            raise


async def accept_offer(
    offer_sdp: str,
    ice_servers: Sequence[IceServer],
    *,
    max_frame_bytes: int,
    max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
    policy: IcePolicy = IcePolicy(),
    label: str = "",
) -> RtcAnswer:
    """Answer an offer (the worker side); the link resolves when the channel opens."""
    transport = await choose_turn_transport(ice_servers, policy.turn_transport)
    config = rtc_configuration(ice_servers, turn_transport=transport)
    pc = RTCPeerConnection(config)
    loop = asyncio.get_running_loop()
    link: asyncio.Future[DataChannelLink] = loop.create_future()
    turn_transport = allocation_transport(config)

    def on_channel(channel: Any) -> None:
        def opened() -> None:
            if not link.done():
                link.set_result(
                    DataChannelLink(
                        channel,
                        pc,
                        path=path_of(pc, turn_transport),
                        max_frame_bytes=max_frame_bytes,
                        max_queued_frames=max_queued_frames,
                        label=label,
                    )
                )

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

    pc.on("datachannel", on_channel)
    try:
        with _gathering_on(policy.host_addresses):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
    except Exception:
        with contextlib.suppress(Exception):
            await pc.close()
        raise
    return RtcAnswer(pc=pc, sdp=pc.localDescription.sdp, link=link)
