"""The ``Link`` interface: what peers and sessions use, whatever carries the frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum

from shared.errors import TandemError
from shared.messages import Message

__all__ = ["Link", "LinkClosed", "PathKind"]


class PathKind(StrEnum):
    """Which network path a link rides on; reported in headers and metrics."""

    DIRECT = "direct"
    TURN_UDP = "turn-udp"
    TURN_TCP = "turn-tcp"
    TURN_TLS = "turn-tls"
    """TURN over TLS (``turns:``, e.g. on 443): networks that pass only HTTPS."""
    RELAY = "relay"
    UNKNOWN = "unknown"
    """A WebRTC link whose candidate pair could not be read (see ``link.rtc.path_of``)."""


class LinkClosed(TandemError):
    """The link is closed (by us, by the peer, or because the peer misbehaved)."""


class Link(ABC):
    """An ordered, reliable message stream to one peer."""

    @property
    @abstractmethod
    def path(self) -> PathKind:
        """The path in use now."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once the link can carry nothing more."""

    @abstractmethod
    async def send(self, message: Message) -> None:
        """Send one message, waiting while the peer is slow; raises ``LinkClosed``."""

    @abstractmethod
    async def recv(self) -> Message:
        """Next message from the peer; raises ``LinkClosed`` when there will be none."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the link; safe to call twice."""

    @property
    def local_address(self) -> str | None:
        """The address of this host the link's packets leave from, where the transport
        can tell (``None`` elsewhere): when that address goes away, the link is dead."""
        return None

    @property
    def backlog_bytes(self) -> int:
        """Bytes sent and still queued below us, not yet on the wire (0 where the
        transport cannot tell). Senders coalesce while it is above zero."""
        return 0

    async def wait_drained(self) -> None:
        """Return once ``backlog_bytes`` is 0 (at once where the transport cannot tell),
        or the link is closed."""
        return None
