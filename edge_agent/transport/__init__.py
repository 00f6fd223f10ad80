"""Paths to a worker, best first: WebRTC (direct, or through TURN) within a deadline,
then the relay through signaling. Each yields a ``link.Link``; peers never branch on
how it was made, only on ``link.path``."""

from __future__ import annotations

import logging

from edge_agent.errors import TransportError
from edge_agent.transport.base import Connected
from edge_agent.transport.relay_path import connect_relay
from edge_agent.transport.webrtc import connect_webrtc
from link import IcePolicy, SignalingClient

__all__ = ["Connected", "connect_relay", "connect_webrtc", "connect_worker"]

log = logging.getLogger(__name__)


async def connect_worker(
    signaling: SignalingClient,
    *,
    model: str,
    policy: IcePolicy,
    ice_deadline_s: float,
    connect_timeout_s: float,
    max_frame_bytes: int,
    max_queued_frames: int,
    force_relay: bool = False,
    avoid: tuple[str, ...] = (),
) -> Connected:
    """The best path that opens: WebRTC within ``ice_deadline_s`` (aiortc alone would
    try for about a minute), else the relay. ``NoPeerAvailable`` if no worker (other than
    those in ``avoid``) exists."""
    if not force_relay:
        try:
            return await connect_webrtc(
                signaling,
                model=model,
                timeout_s=ice_deadline_s,
                max_frame_bytes=max_frame_bytes,
                max_queued_frames=max_queued_frames,
                policy=policy,
                avoid=avoid,
            )
        except TransportError as exc:
            log.info("no WebRTC path (%s); falling back to the relay through signaling", exc)
    return await connect_relay(
        signaling,
        model=model,
        timeout_s=connect_timeout_s,
        max_frame_bytes=max_frame_bytes,
        max_queued_frames=max_queued_frames,
        avoid=avoid,
    )
