"""The signaling server a signaling benchmark measures: ``signaling-server serve`` in its
own process, so that its RSS and CPU (read from ``/proc``) are its own and not the load
generator's. Used by ``bench.signaling_load`` and ``bench.signaling_load_tls``.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack.stack import free_port

__all__ = ["Server", "start_server", "stop_server"]


@dataclass
class Server:
    """A running ``signaling-server serve``: its process (RSS and CPU from ``/proc``), port."""

    proc: subprocess.Popen[bytes]
    port: int
    ca_file: Path | None = None  # set: the server speaks TLS

    @property
    def ws_url(self) -> str:
        scheme = "ws" if self.ca_file is None else "wss"
        return f"{scheme}://127.0.0.1:{self.port}/v1/signal"

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")


def start_server(
    secret: str,
    heartbeat_s: float,
    log: Path,
    extra: tuple[str, ...] = (),
    ca_file: Path | None = None,
) -> Server:
    """Start it on a free loopback port; return once ``/healthz`` answers (over TLS,
    checked against ``ca_file``, when given: ``extra`` then holds its certificate)."""
    port = free_port()
    env = {**os.environ, "TANDEM_SECRET": secret, "TANDEM_LOG_LEVEL": "WARNING"}
    args = ["--port", str(port), "--heartbeat-s", str(heartbeat_s)]
    args += ["--max-pending-offers-per-edge", "64", *extra]
    scheme, context = "http", None
    if ca_file is not None:
        scheme, context = "https", ssl.create_default_context(cafile=str(ca_file))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling", "serve", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"signaling exited: {log.read_text()[-2000:]}")
        try:
            url = f"{scheme}://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=2, context=context):
                return Server(proc, port, ca_file)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("signaling did not start")


def stop_server(server: Server) -> None:
    """Terminate it; kill it if it has not exited 10 s later."""
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
