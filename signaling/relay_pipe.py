"""One direction of one relayed session: frames waiting for one member's socket.

Signaling reads each peer's WebSocket in one loop. If that loop forwarded a relayed
frame by awaiting the receiver's socket, a receiver that stops reading would stall the
*sender's* whole connection: every other session, offer and load report of that
sender. So each session has a pipe per direction: the sender's loop only queues (never
waits on the receiver), and the pipe's own task sends, in order. The queue is bounded
in bytes (``--relay-buffer-bytes``); ``put`` says when a frame would pass the bound,
and the broker then drops that one session (not the socket, not the sender's other
sessions), because a receiver that far behind is not coming back in time to matter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

from shared.messages import Message, RelayData

__all__ = ["RelayPipe"]


class RelayPipe:
    """An ordered, byte-bounded queue to one peer, drained by its own task."""

    def __init__(
        self, send: Callable[[Message], Awaitable[bool]], *, limit_bytes: int, name: str
    ) -> None:
        self._send = send
        self._limit = limit_bytes
        self._queue: deque[Message] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._ending = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    @property
    def queued_bytes(self) -> int:
        """Relayed bytes waiting for the receiver's socket (what the bound counts)."""
        return self._bytes

    def put(self, message: Message) -> bool:
        """Queue ``message``; ``False`` (nothing queued) if a ``RelayData`` would take the
        queue past its bound. Control messages (accept, close) are never refused."""
        if self._ending:
            return True  # the session is ending: nothing more goes to this member
        size = len(message.data) if isinstance(message, RelayData) else 0
        if size and self._bytes + size > self._limit:
            return False
        self._bytes += size
        self._queue.append(message)
        self._wake.set()
        return True

    def finish(self, last: Message | None = None) -> None:
        """Send what is queued, then ``last``, then stop (a session ending normally)."""
        if not self._ending:
            if last is not None:
                self._queue.append(last)
            self._ending = True
            self._wake.set()

    def abort(self, last: Message | None = None) -> None:
        """Drop what is queued; send only ``last`` (after a frame already being sent,
        which is never cut), then stop."""
        self._queue.clear()
        self._bytes = 0
        self._ending = True
        if last is not None:
            self._queue.append(last)
        self._wake.set()

    async def aclose(self) -> None:
        """Stop now, sending nothing more (server shutdown)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            while not self._queue:
                if self._ending:
                    return
                self._wake.clear()
                await self._wake.wait()
            message = self._queue.popleft()
            if isinstance(message, RelayData):
                self._bytes -= len(message.data)
            if not await self._send(message):
                return  # the member is gone; its detach closes the session
