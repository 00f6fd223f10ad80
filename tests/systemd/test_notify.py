"""The three programs speak systemd's notification protocol (``Type=notify``): started
for real with ``NOTIFY_SOCKET`` set to a real ``AF_UNIX`` datagram socket, as systemd
would, each sends ``READY=1`` only once it can serve, readable ``STATUS=`` lines,
``WATCHDOG=1`` from its event loop (and none once the loop is blocked), and
``STOPPING=1`` on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon.service import HANG_SIGNAL_ENV
from devstack.stack import free_port
from shared.messages import Role
from tests.support.apps import SECRET, token
from tests.support.notify import NotifySocket
from tests.systemd.test_units import BIN

pytestmark = pytest.mark.e2e

WATCHDOG_USEC = 400_000
"""A short watchdog (pings every 0.2 s) so that the test sees many; the units use 30 s."""


class Program:
    """One real program under a fake systemd: its notify socket and its process."""

    def __init__(self, systemd: NotifySocket, proc: subprocess.Popen[bytes]) -> None:
        self.systemd = systemd
        self.proc = proc

    def alive(self) -> None:
        if self.proc.poll() is not None:
            stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise AssertionError(f"exited with {self.proc.returncode}: {stderr[-3000:]}")

    def wait_for(self, assignment: str, what: str | None = None) -> list[str]:
        return self.systemd.wait_for(
            lambda message: assignment in message,
            what=what or assignment,
            alive=self.alive,
        )

    def watchdog_pings(self, n: int) -> None:
        for _ in range(n):
            self.wait_for("WATCHDOG=1")


@contextmanager
def program(tmp_path: Path, argv: list[str], env: dict[str, str]) -> Iterator[Program]:
    systemd = NotifySocket(tmp_path / f"notify-{argv[0]}")
    proc = subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        env={**os.environ, **systemd.env(watchdog_usec=WATCHDOG_USEC), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield Program(systemd, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        systemd.close()


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def status_of(message: list[str]) -> str:
    return next(item.removeprefix("STATUS=") for item in message if item.startswith("STATUS="))


def stop(prog: Program) -> None:
    """SIGTERM, as ``systemctl stop``: STOPPING=1 first, then a clean exit."""
    prog.proc.send_signal(signal.SIGTERM)
    prog.wait_for("STOPPING=1")
    assert prog.proc.wait(60) == 0


def test_edge_is_ready_once_healthz_says_ok(tmp_path: Path) -> None:
    port = free_port()
    with program(tmp_path, ["edge-agent", "serve", "--port", str(port)], {}) as edge:
        first = edge.systemd.wait_for(lambda m: any(i.startswith("STATUS=") for i in m))
        ready = edge.wait_for("READY=1")
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body["status"] == "ok", body
        if "READY=1" not in first:  # the model took longer than one status tick
            assert status_of(first).startswith("loading local model"), first
        line = status_of(ready)
        assert line.startswith(f"serving {body['local_model']} on http://127.0.0.1:{port}/v1")
        assert "cloud disabled (local only)" in line
        edge.watchdog_pings(5)  # keeps coming while it serves
        stop(edge)


@pytest.mark.parametrize("name", ["edge", "signaling"])
def test_a_blocked_event_loop_stops_the_watchdog(tmp_path: Path, name: str) -> None:
    """The hang hook blocks only the event loop (its threads run on): the pings stop,
    which is what makes systemd kill and restart a hung service."""
    port = free_port()
    argv = {
        "edge": ["edge-agent", "serve", "--port", str(port)],
        "signaling": ["signaling-server", "serve", "--port", str(port)],
    }[name]
    env = {HANG_SIGNAL_ENV: "SIGUSR2", "TANDEM_SECRET": SECRET}
    with program(tmp_path, argv, env) as prog:
        prog.wait_for("READY=1")
        prog.watchdog_pings(3)
        prog.proc.send_signal(signal.SIGUSR2)
        prog.systemd.wait_for(
            lambda m: m == ["STATUS=debug: event loop blocked on purpose"],
            what="the hang hook's status",
            alive=prog.alive,
        )
        # Absence can only be shown over some time: 25 watchdog intervals with no ping.
        # A slow machine cannot make a ping appear, only a turning loop can.
        for _ in range(5):
            message = prog.systemd.receive(timeout_s=5 * WATCHDOG_USEC / 2 / 1e6)
            assert message is None, f"the blocked loop still sent {message}"
        prog.alive()  # hung, not dead: systemd's watchdog is what ends it


def test_signaling_is_ready_once_it_listens(tmp_path: Path) -> None:
    port = free_port()
    argv = ["signaling-server", "serve", "--port", str(port)]
    with program(tmp_path, argv, {"TANDEM_SECRET": SECRET}) as server:
        ready = server.wait_for("READY=1")
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body["workers"] == 0
        assert status_of(ready) == (
            f"listening on ws://127.0.0.1:{port}/v1/signal; 0 worker(s), 0 edge(s) connected"
        )
        server.watchdog_pings(3)
        stop(server)


def test_worker_is_ready_once_registered_with_signaling(tmp_path: Path) -> None:
    """READY waits for signaling: none while signaling is down; once it is up and the
    worker registers, READY, and signaling already counts the worker."""
    signal_port, worker_port = free_port(), free_port()
    token_file = tmp_path / "worker.token"
    token_file.write_text(token(Role.WORKER, "gpu-notify"))
    worker_argv = ["cloud-worker", "serve", "--port", str(worker_port)]
    worker_argv += ["--signaling", f"ws://127.0.0.1:{signal_port}/v1/signal"]
    worker_argv += ["--token-file", str(token_file), "--reconnect-max-s", "1"]
    with program(tmp_path, worker_argv, {}) as worker:
        # Model loaded (healthz 200), signaling still down: a status says so, no READY.
        down = worker.systemd.wait_for(
            lambda m: any(i.startswith("STATUS=") and "signaling unreachable" in i for i in m),
            what="a status naming signaling unreachable",
            alive=worker.alive,
        )
        assert "READY=1" not in down
        assert not any("READY=1" in m for m in worker.systemd.received)
        signaling_argv = ["signaling-server", "serve", "--port", str(signal_port)]
        with program(tmp_path, signaling_argv, {"TANDEM_SECRET": SECRET}) as server:
            server.wait_for("READY=1")
            ready = worker.wait_for("READY=1")
            status, body = get(f"http://127.0.0.1:{signal_port}/healthz")
            assert status == 200 and body["workers"] == 1, body
            line = status_of(ready)
            assert "registered with signaling as gpu-notify" in line, line
            assert line.startswith("serving: "), line
            assert get(f"http://127.0.0.1:{worker_port}/healthz")[0] == 200
            worker.watchdog_pings(3)
            counts = f"{signal_port}/v1/signal; {{}} worker(s), 0 edge(s) connected"
            registered = f"STATUS=listening on ws://127.0.0.1:{counts.format(1)}"
            server.systemd.wait_for(lambda m: registered in m, since=0, alive=server.alive)
            stop(worker)
            server.wait_for(f"STATUS=listening on ws://127.0.0.1:{counts.format(0)}")
            stop(server)
