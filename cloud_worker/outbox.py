"""``Outbox``: one edge link's outgoing stream frames, coalesced while the link is backed up.

Every data-channel message costs aiortc the same whatever its size (a DTLS record, a UDP
datagram, a SACK back), so one frame per token caps a link at aiortc's message rate.
Here a frame goes out at once when its stream has nothing waiting and the link has
drained (the first token of a stream on an idle link is never delayed); otherwise it
waits in its stream's queue, where consecutive ``TokenChunk``s merge into one (text
concatenated, ``n_tokens`` summed, logprobs concatenated: exactly the chunks the edge's
own ``StreamInbox`` merges for a slow reader, and what its ``StreamGuard`` counts). One
writer sends the queued frames, a round of one per stream each time the link drains.

Per stream, frames keep their order, and a stream's end never overtakes its chunks.
Bounded: a merged chunk stops growing at ``max_merge_chars`` characters (or
``max_merge_logprobs`` logprobs: frames stay far below the fragmenting size), and a
stream with ``max_queued`` frames waiting is paused until the writer takes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from cloud_worker.backends.base import BackendEvent
from link import Link, LinkClosed
from shared.messages import StreamFailed, TokenChunk

__all__ = ["Outbox", "merge_chunks"]

log = logging.getLogger(__name__)

Frame = BackendEvent | StreamFailed


def merge_chunks(first: TokenChunk, second: TokenChunk) -> TokenChunk:
    """One chunk carrying both, in order."""
    return TokenChunk(
        request_id=first.request_id,
        text=first.text + second.text,
        n_tokens=first.n_tokens + second.n_tokens,
        logprobs=first.logprobs + second.logprobs,
    )


class Outbox:
    """Sends one link's stream frames in order per stream, coalescing under backlog."""

    def __init__(
        self,
        link: Link,
        *,
        max_merge_chars: int = 4096,
        max_merge_logprobs: int = 64,
        max_queued: int = 16,
    ) -> None:
        self._link = link
        self._max_chars = max_merge_chars
        self._max_logprobs = max_merge_logprobs
        self._max_queued = max_queued
        self._queues: dict[str, deque[Frame]] = {}
        """Streams with frames waiting, oldest first (the writer's round-robin order)."""
        self._sending: set[str] = set()
        self._wake = asyncio.Event()
        self._taken = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._failed: dict[str, Exception] = {}
        """Streams whose queued frame the link refused (``FrameTooLarge``): their next
        ``send`` or ``settle`` raises it, so the stream fails as it did when it sent
        itself."""
        self.merged = 0
        """Chunks merged into another so far (observability and tests)."""

    def _idle(self, rid: str) -> bool:
        return rid not in self._queues and rid not in self._sending

    async def send(self, rid: str, frame: Frame) -> None:
        """Send ``frame`` of stream ``rid`` now if nothing waits, else queue (merging)."""
        if (failed := self._failed.pop(rid, None)) is not None:
            raise failed
        if self._closed or self._link.closed:
            raise LinkClosed("the edge's link is closed")
        if self._idle(rid) and self._link.backlog_bytes == 0:
            self._sending.add(rid)
            try:
                await self._link.send(frame)
            finally:
                self._sending.discard(rid)
                self._taken.set()
            return
        queue = self._queues.get(rid)
        if queue is None:
            queue = self._queues[rid] = deque()
        while len(queue) >= self._max_queued and not self._closed:
            if isinstance(frame, TokenChunk) and self._fits(queue[-1], frame):
                break
            self._taken.clear()
            await self._taken.wait()
        if self._closed:
            raise LinkClosed("the edge's link is closed")
        last = queue[-1] if queue else None
        if isinstance(frame, TokenChunk) and last is not None and self._fits(last, frame):
            assert isinstance(last, TokenChunk)
            queue[-1] = merge_chunks(last, frame)
            self.merged += 1
        else:
            queue.append(frame)
        self._queues.setdefault(rid, queue)
        self._wake.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="outbox")

    def _fits(self, last: Frame, chunk: TokenChunk) -> bool:
        return (
            isinstance(last, TokenChunk)
            and len(last.text) + len(chunk.text) <= self._max_chars
            and len(last.logprobs) + len(chunk.logprobs) <= self._max_logprobs
        )

    async def settle(self, rid: str) -> None:
        """Wait until every frame of ``rid`` has been handed to the link."""
        while not self._idle(rid) and not self._closed:
            self._taken.clear()
            await self._taken.wait()
        if (failed := self._failed.pop(rid, None)) is not None:
            raise failed
        if self._closed and rid in self._queues:
            raise LinkClosed("the edge's link closed before the stream's frames were sent")

    def discard(self, rid: str) -> None:
        """Forget what ``rid`` still has waiting (its stream was cancelled)."""
        self._queues.pop(rid, None)
        self._failed.pop(rid, None)
        self._taken.set()

    async def _write(self) -> None:
        try:
            while True:
                while not self._queues:
                    self._wake.clear()
                    await self._wake.wait()
                await self._link.wait_drained()  # meanwhile, chunks merge
                for rid in list(self._queues):  # a round: one frame per stream
                    queue = self._queues.pop(rid, None)
                    if not queue:
                        continue
                    frame = queue.popleft()
                    if queue:
                        self._queues[rid] = queue  # to the back of the round
                    self._sending.add(rid)
                    try:
                        await self._link.send(frame)
                    except LinkClosed:
                        raise
                    except Exception as exc:  # FrameTooLarge: that stream fails, not all
                        log.warning("stream %s: frame not sent: %s", rid, exc)
                        self._queues.pop(rid, None)
                        self._failed[rid] = exc
                    finally:
                        self._sending.discard(rid)
                    self._taken.set()
        except LinkClosed:
            pass
        finally:
            self._closed = True
            self._taken.set()

    async def aclose(self) -> None:
        """Stop the writer; what is still queued is dropped (the link is going)."""
        self._closed = True
        self._taken.set()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
