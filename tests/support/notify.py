"""A stand-in for systemd's end of ``NOTIFY_SOCKET``: a real ``AF_UNIX`` datagram
socket that collects what a process sends (``READY=1``, ``STATUS=``, ``WATCHDOG=1``...).

Like systemd, it reads the socket as datagrams arrive (a thread), so the kernel's small
queue of unread datagrams (``net.unix.max_dgram_qlen``, often 10) never fills while a
test looks elsewhere; the test takes them in order from ``wait_for``/``receive``.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["NotifySocket"]


class NotifySocket:
    """Bound at ``path`` (a file) or, for ``abstract=True``, an abstract name (``@...``)."""

    def __init__(self, path: Path, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"tandem-test-{os.getpid()}-{id(self)}"
            self.sock.bind(b"\0" + name.encode())
            self.address = f"@{name}"
        else:
            self.sock.bind(str(path))
            self.address = str(path)
        self.received: list[list[str]] = []  # every datagram taken so far, as assignments
        self._queue: queue.Queue[list[str]] = queue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        self.sock.settimeout(0.5)  # to notice close()
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self._queue.put(data.decode().split("\n"))

    def env(self, *, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def receive(self, timeout_s: float) -> list[str] | None:
        """The next datagram's assignments, or None if none came within ``timeout_s``."""
        try:
            message = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        self.received.append(message)
        return message

    def wait_for(
        self,
        predicate: Callable[[list[str]], bool],
        *,
        timeout_s: float = 120.0,
        what: str = "a notification",
        alive: Callable[[], None] = lambda: None,
        since: int | None = None,
    ) -> list[str]:
        """The first datagram that satisfies ``predicate``: from now, or from the
        ``since``-th datagram taken so far; ``alive`` is called between datagrams (to
        fail fast when the process died)."""
        if since is not None:
            for past in self.received[since:]:
                if predicate(past):
                    return past
        deadline = time.monotonic() + timeout_s
        while True:
            alive()
            left = deadline - time.monotonic()
            if left <= 0:
                others = [m for m in self.received if m != ["WATCHDOG=1"]]
                raise AssertionError(f"{what}: not received in {timeout_s:g} s (others: {others})")
            message = self.receive(min(left, 1.0))
            if message is not None and predicate(message):
                return message

    def close(self) -> None:
        self._closed.set()
        self._reader.join()
        self.sock.close()
