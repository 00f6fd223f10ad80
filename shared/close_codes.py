"""WebSocket close codes signaling uses to tell a peer *why* its connection ended.

The 4000-4999 range is the application's own (RFC 6455 §7.4.2). The client reads the
code to decide how to come back: at once with a fresh token, or only after a long
backoff.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode"]


class CloseCode(IntEnum):
    """Why signaling closed a peer's WebSocket."""

    NORMAL = 1000
    """Replaced or finished."""
    GOING_AWAY = 1001
    """The server is shutting down."""
    POLICY_VIOLATION = 1008
    """The peer sent a frame the protocol forbids."""
    TOKEN_EXPIRED = 4001
    """The token the connection was opened with has expired: reconnect with a renewed one."""
    PEER_ID_IN_USE = 4009
    """Another live connection holds this peer id: two devices share one token."""
    RESUMED = 4010
    """This peer reconnected and presented this connection's resume secret: its newer
    connection replaces this one (a network change left this one dead)."""
