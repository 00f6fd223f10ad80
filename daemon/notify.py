"""The systemd notification protocol (``sd_notify(3)``) without libsystemd.

systemd passes a service of ``Type=notify`` the address of an ``AF_UNIX`` datagram
socket in ``NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``);
the service sends newline-separated ``KEY=VALUE`` assignments to it: ``READY=1``,
``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``. ``WATCHDOG_USEC`` (with ``WATCHDOG_PID``
naming the process it is meant for) says how often systemd expects ``WATCHDOG=1``.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so the programs behave the
same from a shell. A failed send is logged once and never raised: a service must not die
because its supervisor went away.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_interval_s"]

log = logging.getLogger(__name__)

MAX_STATUS_CHARS = 1024
"""``systemctl status`` shows one line; a longer STATUS is cut, never split into a second
assignment (a newline inside a value would be one)."""


def _address(value: str) -> str | bytes:
    """``@name`` is Linux's abstract namespace: a leading NUL byte, no file."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends assignments to the socket named by ``NOTIFY_SOCKET``; inert without one."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; True if it was sent."""
        if self.address is None or not assignments:
            return False
        for item in assignments:
            if "=" not in item or "\n" in item:
                raise ValueError(f"not one KEY=VALUE assignment: {item!r}")
        payload = "\n".join(assignments).encode("utf-8", errors="replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                self._socket.setblocking(False)  # never stall the event loop on systemd
            self._socket.sendto(payload, _address(self.address))
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
            return False
        return True

    def status(self, text: str) -> bool:
        """``STATUS=`` on one line, as ``systemctl status`` shows it."""
        line = " ".join(text.split())[:MAX_STATUS_CHARS]
        return self.send(f"STATUS={line}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``WATCHDOG_USEC`` (so one late ping is
    not yet a timeout), or None without a watchdog or when it is meant for another
    process (``WATCHDOG_PID``, e.g. inherited by a child)."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r (not an integer)", usec)
        return None
    return value / 2 / 1_000_000 if value > 0 else None
