"""``DataChannelLink``: a ``Link`` over an aiortc ``RTCDataChannel``.

aiortc's ``send`` never blocks: it appends to the SCTP queue and raises the channel's
``bufferedAmount``. ``send`` here waits for ``bufferedamountlow`` above a high-water
mark so that a slow peer slows the producer instead of growing memory. Receiving is a
sync callback, so frames go to a bounded queue; a peer that overfills it, or sends a
frame we refuse, has its link closed (only that link).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from link.base import Link, LinkClosed, PathKind
from shared.codec import Reassembler, split
from shared.errors import ProtocolError
from shared.messages import Message

__all__ = ["DataChannelLink"]

log = logging.getLogger(__name__)

_CLOSED = object()


class DataChannelLink(Link):
    """Frames over one open data channel; closes the peer connection with it."""

    def __init__(
        self,
        channel: Any,
        pc: Any,
        *,
        path: PathKind,
        max_frame_bytes: int,
        max_message_bytes: int = 1024 * 1024,
        high_water_bytes: int = 256 * 1024,
        max_queued_frames: int = 4096,
        label: str = "",
    ) -> None:
        self._channel = channel
        self._pc = pc
        self._path = path
        self._max_frame_bytes = max_frame_bytes
        self._high_water = high_water_bytes
        self._label = label
        self._reassembler = Reassembler(
            max_frame_bytes=max_frame_bytes, max_message_bytes=max_message_bytes
        )
        self._inbox: asyncio.Queue[Message | object] = asyncio.Queue(maxsize=max_queued_frames)
        self._ids = itertools.count()
        self._low = asyncio.Event()
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        channel.bufferedAmountLowThreshold = high_water_bytes // 2
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        channel.on("bufferedamountlow", self._low.set)
        pc.on("connectionstatechange", self._on_state)

    @property
    def path(self) -> PathKind:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def _on_message(self, data: bytes | str) -> None:
        if self._closed:
            return
        if isinstance(data, str):
            self._fail("text frame on a binary channel")
            return
        try:
            message = self._reassembler.feed(data)
        except ProtocolError as exc:
            self._fail(f"protocol error: {exc}")
            return
        if message is None:
            return
        try:
            self._inbox.put_nowait(message)
        except asyncio.QueueFull:
            self._fail("peer overran the receive queue")

    def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            self._mark_closed()

    def _on_close(self) -> None:
        self._mark_closed()

    def _fail(self, why: str) -> None:
        log.warning("dropping link %s: %s", self._label, why)
        self._mark_closed()
        self._schedule_close()

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._low.set()
        # Wake a reader even if the queue is full: drop one queued message for the marker.
        if self._inbox.full():
            self._inbox.get_nowait()
        self._inbox.put_nowait(_CLOSED)
        self._schedule_close()

    def _schedule_close(self) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._pc.close())

    async def send(self, message: Message) -> None:
        frames = split(message, max_frame_bytes=self._max_frame_bytes, message_id=next(self._ids))
        async with self._send_lock:  # a split message's fragments must not interleave
            for frame in frames:
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

    async def recv(self) -> Message:
        if self._closed and self._inbox.empty():
            raise LinkClosed(f"link {self._label} is closed")
        item = await self._inbox.get()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)  # every later recv sees it too
            raise LinkClosed(f"link {self._label} is closed")
        assert isinstance(item, Message)
        return item

    async def aclose(self) -> None:
        self._mark_closed()
        if self._close_task is not None:
            await asyncio.shield(self._close_task)
