"""A connected peer's timed duties, on event-loop timers rather than a task per peer.

Each peer must be closed when its token expires (re-checked at least every
``expiry_check_s``, because the token's clock is the wall clock, which can step while
the loop sleeps on the monotonic one), and, with TURN configured, be sent fresh
credentials at half their lifetime. Two sleeping tasks per peer did that; a task and
its coroutine frame cost ~2 KB of RSS each, which at 10,000 idle peers is 20-40 MB for
nothing. A ``TimerHandle`` is a few hundred bytes, and a task is made only for the rare
moment a duty actually sends something.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["PeerTimers"]


class PeerTimers:
    """Call ``on_expiry`` once ``clock() >= expires_at``; ``on_refresh`` every
    ``refresh_s`` (if given) until it returns ``False``. ``stop`` ends both."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        expires_at: float,
        check_s: float,
        on_expiry: Callable[[], Awaitable[None]],
        refresh_s: float | None = None,
        on_refresh: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self._expires_at = expires_at
        self._check_s = check_s
        self._on_expiry = on_expiry
        self._refresh_s = refresh_s
        self._on_refresh = on_refresh
        self._expiry: asyncio.TimerHandle | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._check_expiry()
        if refresh_s is not None and on_refresh is not None:
            self._refresh = self._loop.call_later(refresh_s, self._refresh_now)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = self._loop.create_task(run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _check_expiry(self) -> None:
        left = self._expires_at - self._clock()
        if left <= 0:
            self._expiry = None
            self._spawn(self._on_expiry())
            return
        self._expiry = self._loop.call_later(min(left, self._check_s), self._check_expiry)

    def _refresh_now(self) -> None:
        assert self._on_refresh is not None and self._refresh_s is not None
        refresh, every = self._on_refresh, self._refresh_s

        async def run() -> None:
            if await refresh():
                self._refresh = self._loop.call_later(every, self._refresh_now)

        self._refresh = None
        self._spawn(run())

    def stop(self) -> None:
        """Stop the timers and cancel any duty running now (without waiting)."""
        for handle in (self._expiry, self._refresh):
            if handle is not None:
                handle.cancel()
        self._expiry = self._refresh = None
        for task in self._running:
            task.cancel()

    async def wait(self) -> None:
        """Until the duties cancelled by ``stop`` have ended."""
        await asyncio.gather(*list(self._running), return_exceptions=True)
