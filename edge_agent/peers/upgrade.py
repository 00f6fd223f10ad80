"""Which path is better than which, and how long to wait between attempts to reach it.

Relay through signaling < TURN (UDP or TCP) < direct. A link whose path could not be
told (``unknown``) is never lifted: trying would replace it with another such link every
interval.
"""

from __future__ import annotations

from enum import StrEnum

from link import PathKind

__all__ = ["Upgrade", "backoff", "better_path_to_try", "is_upgrade"]


class Upgrade(StrEnum):
    """The better path a link may be lifted to."""

    WEBRTC = "webrtc"
    """Any WebRTC path (direct or TURN), from the relay through signaling."""
    DIRECT = "direct"
    """A direct path, from a TURN-relayed one."""


def backoff(wait_s: float, interval_s: float) -> float:
    """The wait after a failed upgrade: one interval, then doubling, at most 16."""
    return min(max(wait_s * 2, interval_s), interval_s * 16)


def better_path_to_try(path: PathKind, force_relay: bool) -> Upgrade | None:
    """What a link on ``path`` may be lifted to: any WebRTC path from the relay, a direct
    one from TURN; nothing from direct, from a path that could not be told (trying would
    replace it with another such link every interval), or when the relay is forced."""
    if force_relay:
        return None
    if path is PathKind.RELAY:
        return Upgrade.WEBRTC
    if path in (PathKind.TURN_UDP, PathKind.TURN_TCP, PathKind.TURN_TLS):
        return Upgrade.DIRECT
    return None


def is_upgrade(wanted: Upgrade | None, path: PathKind) -> bool:
    """Whether a link on ``path`` is the upgrade ``wanted``."""
    if wanted is Upgrade.WEBRTC:
        return path in (PathKind.DIRECT, PathKind.TURN_UDP, PathKind.TURN_TCP, PathKind.TURN_TLS)
    return wanted is Upgrade.DIRECT and path is PathKind.DIRECT
