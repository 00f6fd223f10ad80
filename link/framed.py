"""``FramedLink``: what every ``Link`` does with frames, whatever carries them.

Outgoing messages are split into frames no larger than the path allows; incoming frames
are reassembled (bounded) into a bounded inbox. A peer that sends a frame we refuse, or
overfills the inbox, gets its link closed: only that link. So a message larger than the
peer reassembles (``MAX_MESSAGE_BYTES``) is never sent: ``send`` raises ``FrameTooLarge``
and the link stays open, instead of the peer dropping it with every stream on it.
Subclasses move bytes: ``_send_frame`` (waiting while the path is congested) and
``_close_transport``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from abc import abstractmethod

from link.base import Link, LinkClosed, PathKind
from shared.codec import MAX_MESSAGE_BYTES, Reassembler, encode, split
from shared.errors import FrameTooLarge, ProtocolError
from shared.messages import Message

__all__ = ["DEFAULT_QUEUED_FRAMES", "FramedLink"]

log = logging.getLogger(__name__)

_CLOSED = object()

DEFAULT_QUEUED_FRAMES = 4096
"""Messages a link holds for its reader unless told otherwise (``--max-queued-frames``)."""


class FramedLink(Link):
    """Splitting, reassembly, the inbox and closing; transport-specific parts abstract."""

    def __init__(
        self,
        *,
        path: PathKind,
        max_frame_bytes: int,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_queued_frames: int = DEFAULT_QUEUED_FRAMES,
        label: str = "",
    ) -> None:
        self._path = path
        self._max_frame_bytes = max_frame_bytes
        self._max_message_bytes = max_message_bytes
        self._label = label
        self._reassembler = Reassembler(
            max_frame_bytes=max_frame_bytes, max_message_bytes=max_message_bytes
        )
        self._inbox: asyncio.Queue[Message | object] = asyncio.Queue(maxsize=max_queued_frames)
        self._ids = itertools.count()
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    @property
    def path(self) -> PathKind:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def rename(self, label: str) -> None:
        """Name the link after its peer once known (logs only)."""
        self._label = label

    @abstractmethod
    async def _send_frame(self, frame: bytes) -> None:
        """Send one frame, waiting while the path is congested; ``LinkClosed`` if gone."""

    @abstractmethod
    async def _close_transport(self) -> None:
        """Release what carries the frames."""

    def _deliver(self, data: bytes) -> None:
        """Hand one received frame in (sync: transports call it from callbacks)."""
        if self._closed:
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

    def _fail(self, why: str) -> None:
        log.warning("dropping link %s: %s", self._label, why)
        self._mark_closed()

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_closed()
        # Wake a reader even if the queue is full: drop one queued message for the marker.
        if self._inbox.full():
            self._inbox.get_nowait()
        self._inbox.put_nowait(_CLOSED)
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close_transport())

    def _on_closed(self) -> None:
        """Hook: wake whatever waits on the transport."""

    async def send(self, message: Message) -> None:
        size = len(encode(message))
        if size > self._max_message_bytes:
            raise FrameTooLarge(
                f"a {message.type_tag} of {size} bytes exceeds the {self._max_message_bytes} "
                "bytes the peer reassembles; not sent"
            )
        frames = split(message, max_frame_bytes=self._max_frame_bytes, message_id=next(self._ids))
        async with self._send_lock:  # a split message's fragments must not interleave
            for frame in frames:
                if self._closed:
                    raise LinkClosed(f"link {self._label} is closed")
                await self._send_frame(frame)

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
