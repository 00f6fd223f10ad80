"""``Handoff``: items from one producer thread to one asyncio reader, a bounded number at a time.

The llama.cpp thread produces tokens faster than a slow reader (a congested data
channel, a slow HTTP client) takes them. With an unbounded queue it would run ahead,
holding everything it made in memory; here it waits once ``capacity`` items are waiting,
so a slow reader slows the producer and no item is ever dropped.

The producer never waits on a reader that is gone: ``cancel`` (the reader stopped, or
the runner is closing) wakes it at once, and from then on ``put`` drops what it is given
and says so. ``put_final`` never waits: a generation ends with at most one of it, so
the queue holds at most ``capacity + 1`` items.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """A bounded hand-off from one producer thread into one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=capacity + 1)
        self._room = threading.Condition()
        self._pending = 0  # put and not yet taken, counting those still on their way
        self._cancelled = False
        self._stalled = False
        self._dropped = False

    @property
    def backlog(self) -> int:
        """Items put and not yet taken by the reader."""
        return self._pending

    @property
    def stalled(self) -> bool:
        """The producer is waiting for the reader to take something."""
        return self._stalled

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def dropped(self) -> bool:
        """``put`` dropped an item because the hand-off was cancelled."""
        return self._dropped

    # ---------------------------------------------------------------- producer thread

    def put(self, item: T) -> bool:
        """Hand ``item`` over, waiting while ``capacity`` items wait for the reader.

        False (and the item dropped) once cancelled: nobody will read it.
        """
        with self._room:
            while self._pending >= self.capacity and not self._cancelled:
                self._stalled = True
                self._room.wait()
            self._stalled = False
            if self._cancelled:
                self._dropped = True
                return False
            self._pending += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        return True

    def put_final(self, item: T) -> None:
        """Hand over the producer's last item (an error) without waiting, even if cancelled:
        a reader still waiting (``aclose`` cancelled the generation) must hear of it."""
        with self._room:
            self._pending += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    # ------------------------------------------------------------------- event loop

    def cancel(self) -> None:
        """Stop the producer: a waiting ``put`` returns False now, later ones at once."""
        with self._room:
            self._cancelled = True
            self._room.notify_all()

    def empty(self) -> bool:
        return self._queue.empty()

    async def get(self) -> T:
        """The next item, waiting for one."""
        item = await self._queue.get()
        self._taken()
        return item

    def get_nowait(self) -> T:
        """The next item; ``asyncio.QueueEmpty`` if none is waiting."""
        item = self._queue.get_nowait()
        self._taken()
        return item

    def _taken(self) -> None:
        with self._room:
            self._pending -= 1
            self._stalled = False  # there is room: a waiting producer goes on
            self._room.notify()
