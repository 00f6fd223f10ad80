"""How a peer gathers ICE candidates, without importing aiortc.

``IcePolicy`` and the helpers beside it are what settings, the edge's pool and the
worker need to describe a connection; the handshake itself (``link.rtc``) imports
aiortc, which with PyAV and its codecs costs ~25 MB of RSS. Keeping these apart lets
an edge that never opens a WebRTC link (local only, or before its first escalation)
stay without it: the footprint matters on a Raspberry Pi.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.settings import PeerSettings

__all__ = ["IcePolicy", "parse_addresses", "quiet_webrtc_logs"]


def parse_addresses(value: str | None) -> tuple[str, ...] | None:
    """``"127.0.0.1, ::1"`` -> ``("127.0.0.1", "::1")``; empty or ``None`` -> ``None`` (all);
    ``"none"`` -> ``()``: no host candidates at all (only TURN, or the relay)."""
    if not value or not value.strip():
        return None
    if value.strip().lower() == "none":
        return ()
    return tuple(a.strip() for a in value.split(",") if a.strip())


def quiet_webrtc_logs(level: str) -> None:
    """aioice logs every ICE check at INFO: keep that for DEBUG runs, not for journald."""
    if level != "DEBUG":
        for name in ("aioice", "aiortc"):
            logging.getLogger(name).setLevel(logging.WARNING)


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
