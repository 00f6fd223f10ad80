"""Open a WebRTC data channel to a worker that signaling picks for us (direct or TURN).

With ``transport/relay_path.py``, the only modules of the edge that see aiortc or signaling
errors: they become ``TransportError`` / ``NoPeerAvailable`` here, so nothing above
knows aiortc exists.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from edge_agent.errors import ConnectTimeout, NoPeerAvailable, PathFailed
from edge_agent.transport.base import Connected
from link import (
    IcePolicy,
    LinkClosed,
    SignalingClient,
    SignalingRefused,
    SignalingUnavailable,
    load_rtc,
)
from shared.messages import ErrorCode, Offer

__all__ = ["connect_webrtc"]

log = logging.getLogger(__name__)


async def connect_webrtc(
    signaling: SignalingClient,
    *,
    model: str,
    timeout_s: float,
    max_frame_bytes: int,
    max_queued_frames: int,
    policy: IcePolicy,
    avoid: tuple[str, ...] = (),
) -> Connected:
    """Offer (to a worker signaling picks, none of ``avoid``), get the answer through
    signaling, wait for the channel."""
    session_id = uuid.uuid4().hex
    try:
        await signaling.wait_connected(timeout_s)
        # Imported here, not at the top: link.rtc imports aiortc (~25 MB of RSS with
        # PyAV), which an edge pays for only once it opens its first WebRTC link; and on
        # a thread (load_rtc), because that first link is tried beside the first requests.
        await load_rtc()
        from link.rtc import create_offer

        rtc = await create_offer(signaling.ice_servers, policy)
    except SignalingUnavailable as exc:
        raise NoPeerAvailable(str(exc)) from exc
    try:
        answer = await signaling.request_answer(
            Offer(session_id=session_id, sdp=rtc.sdp, model=model, avoid=avoid), timeout_s
        )
        link = await rtc.complete(
            answer.sdp,
            timeout_s=timeout_s,
            max_frame_bytes=max_frame_bytes,
            max_queued_frames=max_queued_frames,
            label=answer.peer_id,
        )
    except SignalingRefused as exc:
        await rtc.aclose()
        if exc.code is ErrorCode.NO_WORKER:
            raise NoPeerAvailable(str(exc)) from exc
        raise PathFailed(f"signaling refused the offer: {exc}") from exc
    except SignalingUnavailable as exc:
        await rtc.aclose()
        raise NoPeerAvailable(str(exc)) from exc
    except asyncio.CancelledError:  # a background upgrade given up: leave nothing open
        await rtc.aclose()
        raise
    except TimeoutError as exc:
        raise ConnectTimeout(f"no data channel within {timeout_s:.0f} s") from exc
    except (LinkClosed, ValueError, OSError) as exc:  # aiortc: bad SDP, ICE/DTLS failure
        await rtc.aclose()
        raise PathFailed(f"WebRTC handshake failed: {exc.__class__.__name__}") from exc
    log.info("data channel to worker %s open on path %s", answer.peer_id, link.path.value)
    return Connected(link=link, worker_id=answer.peer_id, model=answer.model)
