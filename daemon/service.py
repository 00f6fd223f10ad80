"""A process's conversation with systemd, attached to its aiohttp application.

- ``READY=1`` once the process can serve: its sockets listen (``listening``, which the
  CLI passes to ``web.run_app`` as ``print``: aiohttp calls it after every site has
  started) *and* its own condition holds (the edge's model is loaded, the worker is
  registered with signaling). Checked on a short tick, sent once.
- ``STATUS=`` whenever the one-line summary changes (model, cloud path, load), so that
  ``systemctl status`` reads like the process's dashboard.
- ``WATCHDOG=1`` from the event loop every half ``WATCHDOG_USEC``: a task on the loop,
  so a loop that stops turning stops the pings and systemd restarts the service.
- ``STOPPING=1`` when shutdown begins (SIGTERM: aiohttp's graceful exit runs
  ``on_shutdown`` first); the watchdog keeps pinging while the process drains.

No reload: settings build engines and links that cannot be swapped in place, so there is
no ``ExecReload=`` and no ``RELOADING=1``; a changed setting takes ``systemctl restart``
(the peer token needs neither: it is re-read at every reconnect).

``TANDEM_DEBUG_HANG_SIGNAL`` (tests only, undocumented in ``--help``): the name of a
signal, e.g. ``SIGUSR2``, whose handler blocks the event loop for good, as a hung loop
would. It exists so that the watchdog can be tested on the real program; a user never
sets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from daemon.notify import Notifier, watchdog_interval_s

__all__ = ["HANG_SIGNAL_ENV", "ServiceNotifications"]

log = logging.getLogger(__name__)

HANG_SIGNAL_ENV = "TANDEM_DEBUG_HANG_SIGNAL"


class ServiceNotifications:
    """Readiness, status, watchdog and stopping for one aiohttp application.

    ``is_ready`` and ``status`` are cheap reads of the process's state; they are polled
    every ``tick_s`` (a poll, not a hook into every component, so that no module outside
    this one knows systemd exists).
    """

    def __init__(
        self,
        *,
        is_ready: Callable[[], bool],
        status: Callable[[], str],
        notifier: Notifier | None = None,
        environ: Mapping[str, str] | None = None,
        tick_s: float = 0.25,
    ) -> None:
        env = os.environ if environ is None else environ
        self._notifier = notifier or Notifier.from_environ(env)
        self._is_ready = is_ready
        self._status = status
        self._tick_s = tick_s
        self._watchdog_s = watchdog_interval_s(env)
        self._hang_signal = env.get(HANG_SIGNAL_ENV) or None
        self._listening = asyncio.Event()
        self._ready_sent = False
        self._stopping = False
        self._last_status: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, app: web.Application) -> None:
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)  # after the app's own cleanup_ctx

    def listening(self, *_args: Any, **_kwargs: Any) -> None:
        """Pass as ``web.run_app(print=...)``: called once every site listens."""
        self._listening.set()

    async def _on_startup(self, app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        if self._watchdog_s is not None:
            self._tasks.append(
                loop.create_task(self._watchdog(self._watchdog_s), name="sd-watchdog")
            )
        self._tasks.append(loop.create_task(self._report(), name="sd-status"))
        if self._hang_signal:
            signum = signal.Signals[self._hang_signal]
            loop.add_signal_handler(signum, self._hang)

    async def _watchdog(self, interval_s: float) -> None:
        while True:
            self._notifier.send("WATCHDOG=1")
            await asyncio.sleep(interval_s)

    async def _report(self) -> None:
        while True:
            self._update_status()
            if not self._ready_sent and self._listening.is_set() and self._is_ready():
                # A full socket queue (EAGAIN) drops a datagram: retried at the next tick.
                sent = self._notifier.send("READY=1", f"STATUS={self._last_status}")
                self._ready_sent = sent or not self._notifier.enabled
                if self._ready_sent:
                    log.info("ready: %s", self._last_status)
            await asyncio.sleep(self._tick_s if not self._ready_sent else 4 * self._tick_s)

    def _update_status(self) -> None:
        try:
            text = " ".join(self._status().split())
            if self._stopping:
                text = f"stopping: {text}"  # e.g. a worker draining its streams
        except Exception:  # a status line must never take the process down
            log.exception("building the systemd status line failed")
            return
        if text != self._last_status and (
            self._notifier.status(text) or not self._notifier.enabled
        ):
            self._last_status = text  # else: not sent (queue full), retried at the next tick

    async def _on_shutdown(self, app: web.Application) -> None:
        self._stopping = True
        self._notifier.send("STOPPING=1", "STATUS=stopping")
        self._last_status = "stopping"

    async def _on_cleanup(self, app: web.Application) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._notifier.close()

    def _hang(self) -> None:
        """Test hook: block the event loop (not the process) until killed."""
        log.warning("%s: blocking the event loop on purpose (test hook)", HANG_SIGNAL_ENV)
        self._notifier.status("debug: event loop blocked on purpose")
        threading.Event().wait()
