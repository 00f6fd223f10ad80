"""Which path is better than which, how long to wait between attempts to reach it, and
one attempt.

Relay through signaling < TURN (UDP or TCP) < direct. A link whose path could not be
told (``unknown``) is never lifted: trying would replace it with another such link every
interval. The pool (``edge_agent.peers.pool``) decides when to try; how one attempt runs
beside the live link, and gives up when that link leaves, is here with the rest of the
upgrade rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from enum import StrEnum

from edge_agent.errors import EdgeError
from edge_agent.peers.config import PoolConfig
from edge_agent.peers.peer import Peer
from edge_agent.transport import Connected, connect_webrtc
from link import PathKind, SignalingClient

__all__ = ["Upgrade", "backoff", "better_path_to_try", "is_upgrade", "try_upgrade"]

log = logging.getLogger(__name__)


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


async def try_upgrade(
    signaling: SignalingClient, cfg: PoolConfig, peer: Peer, better: Upgrade
) -> Connected | None:
    """One WebRTC attempt beside the live link ``peer``; ``None`` if it failed, or was
    given up because ``peer`` closed or drains meanwhile (the caller handles that).
    Nobody waits on it, so it gets ``upgrade_timeout_s``: TURN over TCP needs more
    than a user-facing deadline allows."""
    attempt = asyncio.ensure_future(
        connect_webrtc(
            signaling,
            model=cfg.model,
            timeout_s=max(cfg.upgrade_timeout_s, cfg.ice_deadline_s),
            max_frame_bytes=cfg.max_frame_bytes,
            max_queued_frames=cfg.max_queued_frames,
            policy=replace(cfg.policy, direct_only=better is Upgrade.DIRECT),
        )
    )
    left = asyncio.ensure_future(peer.wait_left_open())
    try:
        await asyncio.wait({attempt, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        if not attempt.done():
            attempt.cancel()  # connect_webrtc closes its half-open connection
        await asyncio.gather(attempt, left, return_exceptions=True)
    if attempt.cancelled():
        log.debug("upgrade attempt given up: the %s link left", peer.path.value)
        return None
    exc = attempt.exception()
    if isinstance(exc, EdgeError):
        log.info("no %s path yet: %s", better.value, exc)
        return None
    if exc is not None:  # a bug: keep the link we have, try again later
        log.error("upgrade attempt failed unexpectedly", exc_info=exc)
        return None
    return attempt.result()
