"""A stand-in for systemd's end of ``NOTIFY_SOCKET``: a real ``AF_UNIX`` datagram
socket that collects what a process sends (``READY=1``, ``STATUS=``, ``WATCHDOG=1``...)."""

from __future__ import annotations

import os
import socket
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
        self.received: list[list[str]] = []  # every datagram, as its assignments

    def env(self, *, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def receive(self, timeout_s: float) -> list[str] | None:
        """The next datagram's assignments, or None if none came within ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        message = data.decode().split("\n")
        self.received.append(message)
        return message

    def wait_for(
        self,
        predicate: Callable[[list[str]], bool],
        *,
        timeout_s: float = 120.0,
        what: str = "a notification",
        alive: Callable[[], None] = lambda: None,
    ) -> list[str]:
        """The first datagram (from now) that satisfies ``predicate``; ``alive`` is
        called between datagrams (to fail fast when the process died)."""
        deadline = time.monotonic() + timeout_s
        while True:
            alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not received in {timeout_s:g} s ({self.received})")
            message = self.receive(min(left, 1.0))
            if message is not None and predicate(message):
                return message

    def close(self) -> None:
        self.sock.close()
