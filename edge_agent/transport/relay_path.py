"""Open a relayed session: data-channel frames carried by signaling (the last resort)."""

from __future__ import annotations

import logging
import uuid

from edge_agent.errors import NoPeerAvailable, PathFailed
from edge_agent.transport.base import Connected
from link import SignalingClient, SignalingRefused, SignalingUnavailable
from shared.messages import ErrorCode

__all__ = ["connect_relay"]

log = logging.getLogger(__name__)


async def connect_relay(
    signaling: SignalingClient,
    *,
    model: str,
    timeout_s: float,
    max_frame_bytes: int,
    max_queued_frames: int,
    avoid: tuple[str, ...] = (),
) -> Connected:
    """Ask signaling to relay frames to a worker it picks (none of ``avoid``); works
    wherever signaling does."""
    session_id = uuid.uuid4().hex
    try:
        await signaling.wait_connected(timeout_s)
    except SignalingUnavailable as exc:
        raise NoPeerAvailable(str(exc)) from exc
    try:
        link, accept = await signaling.relays.open(
            session_id,
            model=model,
            timeout_s=timeout_s,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            avoid=avoid,
        )
    except SignalingRefused as exc:
        if exc.code is ErrorCode.NO_WORKER:
            raise NoPeerAvailable(str(exc)) from exc
        raise PathFailed(f"signaling refused the relay: {exc}") from exc
    except SignalingUnavailable as exc:  # no accept in time (a worker without relays?)
        raise PathFailed(f"relay through signaling failed: {exc}") from exc
    log.info("relayed session to worker %s open through signaling", accept.peer_id)
    return Connected(link=link, worker_id=accept.peer_id, model=accept.model)
