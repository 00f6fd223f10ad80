"""``PoolConfig``: the pool's deadlines, intervals and choices, all from edge settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.peers.guard import StreamBounds
from link import DEFAULT_QUEUED_FRAMES, IcePolicy

__all__ = ["PoolConfig"]


@dataclass(frozen=True)
class PoolConfig:
    """Deadlines and intervals of the pool, all from edge settings."""

    model: str = ""
    connect_timeout_s: float = 15.0
    ice_deadline_s: float = 8.0
    first_token_timeout_s: float = 60.0
    token_timeout_s: float = 30.0
    max_frame_bytes: int = 16_384
    max_queued_frames: int = DEFAULT_QUEUED_FRAMES
    heartbeat_s: float = 2.0
    dead_after_s: float = 6.0
    policy: IcePolicy = field(default_factory=IcePolicy)
    force_relay: bool = False
    relay_first: bool = True
    """Open the first link on the relay through signaling, upgrade in the background."""
    upgrade_interval_s: float = 5.0
    """Wait before retrying a failed upgrade; doubles after each failure, up to 16x."""
    upgrade_timeout_s: float = 30.0
    """How long one background WebRTC attempt may take (nobody waits on it)."""
    address_poll_s: float = 0.0
    """Check this host's addresses this often; one that vanished means a new link at
    once (and a new signaling connection). 0: off."""
    network_change_check_s: float = 1.0
    """After a network change, a link whose worker says nothing (not even a ``Pong``) for
    this long is closed at once: its streams fail over without waiting ``dead_after_s``."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_queued_chunks: int = 64
    """Token chunks one cloud stream may hold for a slow reader (then they merge)."""
    warm_standby: bool = True
    """Keep a second link, to another worker, ready to take over."""
    bounds: StreamBounds = field(default_factory=StreamBounds)
    """What a worker may send on one stream (``--max-stream-tokens``,
    ``--max-chars-per-token``)."""
