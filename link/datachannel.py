"""``DataChannelLink``: a ``Link`` over an aiortc ``RTCDataChannel``.

aiortc's ``send`` never blocks: it appends to the SCTP queue and raises the channel's
``bufferedAmount``. ``_send_frame`` waits for ``bufferedamountlow`` above a high-water
mark so that a slow peer slows the producer instead of growing memory. Each message
costs aiortc a DTLS record, a UDP datagram and a SACK back, whatever its size, so the
link also tells senders when it has not drained (``backlog_bytes``, ``wait_drained``):
the worker coalesces token chunks meanwhile (``cloud_worker/outbox.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from link.base import LinkClosed, PathKind
from link.framed import DEFAULT_QUEUED_FRAMES, FramedLink
from shared.codec import MAX_MESSAGE_BYTES

__all__ = ["DataChannelLink"]


class DataChannelLink(FramedLink):
    """Frames over one open data channel; closes the peer connection with it."""

    def __init__(
        self,
        channel: Any,
        pc: Any,
        *,
        path: PathKind,
        max_frame_bytes: int,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        high_water_bytes: int = 256 * 1024,
        label: str = "",
    ) -> None:
        super().__init__(
            path=path,
            max_frame_bytes=max_frame_bytes,
            max_message_bytes=max_message_bytes,
            max_queued_frames=max_queued_frames,
            label=label,
        )
        self._channel = channel
        self._pc = pc
        self._high_water = high_water_bytes
        self._low = asyncio.Event()
        # The event fires when aiortc has handed everything to SCTP: both the
        # high-water wait and ``wait_drained`` wake on it.
        channel.bufferedAmountLowThreshold = 0
        channel.on("message", self._on_message)
        channel.on("close", self._mark_closed)
        channel.on("bufferedamountlow", self._low.set)
        pc.on("connectionstatechange", self._on_state)

    @property
    def local_address(self) -> str | None:
        """The host address of the nominated ICE pair; ``None`` for a TURN allocation
        (its socket's address is not on the candidate) or where aioice's internals cannot
        be read (private, like ``link.rtc.path_of``'s lookup)."""
        try:
            candidate = self._pc.sctp.transport.transport._connection._nominated[1].local_candidate
            return str(candidate.host) if candidate.type == "host" else None
        except (AttributeError, KeyError, TypeError):
            return None

    @property
    def backlog_bytes(self) -> int:
        return 0 if self._closed else int(self._channel.bufferedAmount)

    async def wait_drained(self) -> None:
        while not self._closed and self._channel.bufferedAmount > 0:
            self._low.clear()
            await self._low.wait()

    def _on_message(self, data: bytes | str) -> None:
        if isinstance(data, str):
            self._fail("text frame on a binary channel")
        else:
            self._deliver(data)

    def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self._mark_closed()

    def _on_closed(self) -> None:
        self._low.set()

    async def _send_frame(self, frame: bytes) -> None:
        while not self._closed and self._channel.bufferedAmount > self._high_water:
            self._low.clear()
            await self._low.wait()
        if self._closed or self._channel.readyState != "open":
            raise LinkClosed(f"link {self._label} is closed")
        try:
            self._channel.send(frame)
        except Exception as exc:  # aiortc raises InvalidStateError, ConnectionError...
            self._mark_closed()
            raise LinkClosed(f"link {self._label} failed to send") from exc

    async def _close_transport(self) -> None:
        await self._pc.close()
