"""``Stack``: start, health-check and stop the three processes as real subprocesses."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shared.messages import Role
from shared.tokens import mint_token

__all__ = ["Stack", "StackConfig", "StackError", "free_port"]


LOOPBACK_ICE = ("--ice-host-addresses", "127.0.0.1")
"""Everything on one machine: ICE needs no other candidates, and gathering them is slow."""


class StackError(RuntimeError):
    """A process of the stack did not come up."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StackConfig:
    """Where and how to run the stack."""

    edge_model: Path | None = None
    worker_model: Path | None = None
    host: str = "127.0.0.1"
    signaling_port: int = 8765
    worker_port: int = 8766
    edge_port: int = 8080
    log_dir: Path | None = None
    """Write each process's log here; ``None`` lets them share our stderr."""
    token_ttl_s: int = 30 * 24 * 3600
    startup_timeout_s: float = 120.0
    edge_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    tls_cert: Path | None = None
    """Serve signaling over TLS (wss://) with this certificate (for ``host``) and
    ``tls_key``; peers verify it against ``ca_file``. Unset: ws:// on loopback."""
    tls_key: Path | None = None
    ca_file: Path | None = None


class Stack:
    """Owns the three child processes; ``stop`` (or leaving the ``with``) ends them."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.secret = secrets.token_urlsafe(32)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    @property
    def tls(self) -> bool:
        return self.config.tls_cert is not None

    @property
    def signaling_url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.config.host}:{self.config.signaling_port}/v1/signal"

    @property
    def edge_url(self) -> str:
        return f"http://{self.config.host}:{self.config.edge_port}"

    @property
    def worker_health_url(self) -> str:
        return f"http://{self.config.host}:{self.config.worker_port}/healthz"

    def token(self, role: Role, peer_id: str) -> str:
        return mint_token(
            self.secret, role=role, peer_id=peer_id, ttl_s=self.config.token_ttl_s, now=time.time()
        )

    def _spawn(self, name: str, module: str, args: list[str], env: dict[str, str]) -> None:
        cfg = self.config
        stderr: IO[bytes] | None = None
        if cfg.log_dir is not None:
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
            stderr = (cfg.log_dir / f"{name}.log").open("ab")  # a restart appends
            self._logs.append(stderr)
        full_env = {**os.environ, **env, "TANDEM_LOG_LEVEL": cfg.log_level, "PYTHONUNBUFFERED": "1"}
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module, "serve", *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )

    def start_signaling(self) -> None:
        """(Re)start the signaling server with this stack's secret, and wait for it."""
        cfg = self.config
        args = ["--host", cfg.host, "--port", str(cfg.signaling_port)]
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            args += ["--tls-cert", str(cfg.tls_cert), "--tls-key", str(cfg.tls_key)]
        self._spawn("signaling", "signaling", args, {"TANDEM_SECRET": self.secret})
        scheme = "https" if self.tls else "http"
        self.wait_healthy(f"{scheme}://{cfg.host}:{cfg.signaling_port}/healthz", "signaling")

    def start(self, *, wait_for_cloud: bool = True) -> None:
        """Signaling, the worker, the edge; wait until the edge holds a cloud link on its
        best path, WebRTC unless ``--force-relay`` (or,
        with ``wait_for_cloud=False``, only until the edge answers: a worker whose engine
        is not up yet never becomes healthy)."""
        cfg = self.config
        try:
            self.start_signaling()
            self.start_worker("worker", "worker-1", cfg.worker_port, cfg.worker_args)
            self._peer(
                "edge",
                "edge_agent",
                Role.EDGE,
                "edge-1",
                cfg.edge_port,
                cfg.edge_model,
                cfg.edge_args,
            )
            if not wait_for_cloud:
                self.wait_healthy(f"{self.edge_url}/healthz", "edge")
                return
            self.wait_healthy(self.worker_health_url, "worker")
            # The edge links over the relay through signaling at once, then upgrades to
            # WebRTC (always possible on loopback): wait for the path it settles on.
            relay_only = "--force-relay" in cfg.edge_args
            self.wait_healthy(
                f"{self.edge_url}/healthz",
                "edge",
                want=lambda b: (
                    b.get("cloud") == "ready" and (relay_only or b.get("cloud_path") != "relay")
                ),
            )
        except BaseException:
            self.stop()
            raise

    def start_worker(
        self, name: str, peer_id: str, port: int, extra_args: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Spawn one cloud worker as ``procs[name]`` (not waiting for it): the stack's own,
        or more of them, or a replacement for one that died, as a spot fleet would."""
        cfg = self.config
        self._peer(name, "cloud_worker", Role.WORKER, peer_id, port, cfg.worker_model, extra_args)
        return self.procs[name]

    def _peer(
        self,
        name: str,
        module: str,
        role: Role,
        peer_id: str,
        port: int,
        model: Path | None,
        extra_args: list[str] | None = None,
    ) -> None:
        """Spawn an edge or a worker: linked to this stack's signaling, on loopback."""
        cfg = self.config
        args = ["--host", cfg.host, "--port", str(port)]
        if "--signaling" not in (extra_args or []):  # --signaling repeats add URLs: the
            args = ["--signaling", self.signaling_url, *args]  # caller's replace ours
        args += LOOPBACK_ICE
        if cfg.ca_file is not None:
            args += ["--ca-file", str(cfg.ca_file)]
        if model is not None:
            args += ["--model", str(model)]
        self._spawn(
            name, module, args + (extra_args or []), {"TANDEM_TOKEN": self.token(role, peer_id)}
        )

    def wait_healthy(self, url: str, name: str, want: Any = None) -> dict[str, Any]:
        """Poll ``url`` until it answers 200 (and ``want(body)``), or fail with the reason."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        last = "no answer"
        context = None
        if url.startswith("https:"):
            ca = self.config.ca_file
            context = ssl.create_default_context(cafile=str(ca) if ca else None)
        while time.monotonic() < deadline:
            for proc_name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"{proc_name} exited with code {proc.returncode} while starting"
                    )
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                    body: dict[str, Any] = json.loads(resp.read())
                    if want is None or want(body):
                        return body
                    last = json.dumps(body)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise StackError(
            f"{name} not healthy at {url} after {self.config.startup_timeout_s:.0f} s: {last}"
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM in reverse start order, then SIGKILL whatever is left. Idempotent."""
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
