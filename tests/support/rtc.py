"""A real WebRTC pair on loopback: the edge's offer side and the worker's answer side,
with no signaling in between (the SDPs are handed over directly)."""

from __future__ import annotations

from link import DEFAULT_QUEUED_FRAMES, DataChannelLink, IcePolicy, accept_offer, create_offer

LOOPBACK = IcePolicy(host_addresses=("127.0.0.1",))
FRAME = 16_384


async def open_pair(
    max_frame_bytes: int = FRAME, max_queued_frames: int = DEFAULT_QUEUED_FRAMES
) -> tuple[DataChannelLink, DataChannelLink]:
    """(edge link, worker link), connected over 127.0.0.1."""
    offer = await create_offer((), LOOPBACK)
    answer = await accept_offer(
        offer.sdp,
        (),
        max_frame_bytes=max_frame_bytes,
        max_queued_frames=max_queued_frames,
        policy=LOOPBACK,
    )
    edge = await offer.complete(
        answer.sdp,
        timeout_s=20,
        max_frame_bytes=max_frame_bytes,
        max_queued_frames=max_queued_frames,
    )
    worker = await answer.wait_link(20)
    return edge, worker
