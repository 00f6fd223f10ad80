"""Tandem's three programs, and coturn, started inside the namespaces of a ``Network``.

Deployed as the docs say: coturn from the shipped ``deploy/coturn/turnserver.conf``
(plus ``allowed-peer-ip`` for the emulated internet, 203.0.113.0/24, which that config
denies like every documentation range), and signaling over TLS with a certificate from
a CA this stack makes, which the peers (and netcheck) verify with ``--ca-file``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from shared.messages import Role
from shared.tokens import mint_token
from tests.netns.topology import INTERNET_PREFIX
from tests.support.tls import CertAuthority
from tests.support.wait import wait_until

__all__ = ["NetStack"]

SIGNALING_PORT = 8765
TURN_PORT = 3478
WORKER_PORT = 8766
SHIPPED_COTURN = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"


class NetStack:
    """Owns the processes it starts (by handle, never by name); ``close`` ends them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.secret = secrets.token_urlsafe(32)
        self.turn_secret = secrets.token_urlsafe(24)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        """Wall-clock time each process was started (the probe reports wall times too)."""
        self._logs: list[IO[bytes]] = []
        self.signaling_url = ""
        self.ca = CertAuthority.make(log_dir / "ca")
        # TURN over TLS is verified with the system's CAs (aiortc gives aioice no context
        # of ours), so the peers trust this stack's CA the way OpenSSL lets a host add one.
        self.trust_env = {"SSL_CERT_FILE": str(self.ca.ca_file)}

    def _spawn(
        self, name: str, ns: str, argv: list[str], env: dict[str, str] | None = None
    ) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        full_env = {
            **os.environ,
            **(env or {}),
            "PYTHONUNBUFFERED": "1",
            "TANDEM_LOG_LEVEL": "DEBUG",
        }
        self.started[name] = time.time()
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )

    def coturn(self, ns: str, ip: str, ip2: str, *, tls_port: int | None = None) -> None:
        """coturn on ``ip`` and ``ip2`` (3478, UDP and TCP); with ``tls_port``, TURN over
        TLS there too, with a certificate for ``ip`` from this stack's CA."""
        shipped = SHIPPED_COTURN.read_text().replace("PUBLIC_IP", ip)
        if tls_port is None:
            tls = ["no-tls"]
        else:
            cert = self.ca.issue((ip,))
            tls = [f"tls-listening-port={tls_port}", f"cert={cert.cert}", f"pkey={cert.key}"]
        shipped = shipped.replace("THE_TURN_SECRET", self.turn_secret)
        conf = self.log_dir / "turnserver.conf"
        conf.write_text(
            "\n".join(
                [
                    shipped,
                    "# --- this emulated internet ---",
                    f"listening-ip={ip2}",
                    f"allowed-peer-ip={INTERNET_PREFIX}.0-{INTERNET_PREFIX}.255",
                    "min-port=49152",
                    "max-port=49999",
                    *tls,
                    "no-dtls",
                    f"pidfile={self.log_dir / 'turnserver.pid'}",
                    "log-file=stdout",
                    "simple-log",
                ]
            )
            + "\n"
        )
        self._spawn("coturn", ns, ["turnserver", "-c", str(conf)])

    def signaling(
        self,
        ns: str,
        ip: str,
        ip2: str,
        *,
        host: str | None = None,
        port: int = SIGNALING_PORT,
        turns_port: int | None = None,
    ) -> None:
        """Signaling on ``host`` (default ``ip``):``port``, over TLS (wss://) with a
        certificate for that address, handing out coturn on ``ip`` as one bare ``turn:``
        URL (signaling offers it over UDP and TCP), plus ``turns:`` on ``turns_port``."""
        stun = f"stun:{ip}:{TURN_PORT},stun:{ip2}:{TURN_PORT}"
        turn = f"turn:{ip}:{TURN_PORT}"
        if turns_port is not None:
            turn += f",turns:{ip}:{turns_port}?transport=tcp"
        host = host or ip
        cert = self.ca.issue((host,))
        self._spawn(
            "signaling",
            ns,
            [
                sys.executable,
                "-m",
                "signaling",
                "serve",
                "--host",
                host,
                "--port",
                str(port),
                "--stun-url",
                stun,
                "--turn-url",
                turn,
                "--tls-cert",
                str(cert.cert),
                "--tls-key",
                str(cert.key),
            ],
            {"TANDEM_SECRET": self.secret, "TANDEM_TURN_SECRET": self.turn_secret},
        )
        self.signaling_url = f"wss://{host}:{port}/v1/signal"

    def token(self, role: Role, peer_id: str) -> str:
        return mint_token(self.secret, role=role, peer_id=peer_id, ttl_s=3600, now=time.time())

    def _peer(
        self, name: str, module: str, ns: str, port: int, role: Role, args: tuple[str, ...]
    ) -> None:
        """A worker or an edge in ``ns``, linked to signaling, its HTTP on loopback there."""
        argv = [sys.executable, "-m", module, "serve", "--signaling", self.signaling_url]
        argv += ["--ca-file", str(self.ca.ca_file)]
        argv += ["--host", "127.0.0.1", "--port", str(port), *args]
        env = {"TANDEM_TOKEN": self.token(role, f"{name}-1"), **self.trust_env}
        self._spawn(name, ns, argv, env)

    def worker(self, ns: str, *args: str) -> None:
        args = ("--n-ctx", "1024", *args)
        self._peer("worker", "cloud_worker", ns, WORKER_PORT, Role.WORKER, args)

    def edge(self, ns: str, *args: str) -> None:
        self._peer("edge", "edge_agent", ns, 8080, Role.EDGE, args)

    def _json_from(
        self,
        ns: str,
        argv: list[str],
        *,
        timeout_s: float,
        ok: tuple[int, ...] = (0,),
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run our Python with ``argv`` inside ``ns``; its stdout, parsed as JSON."""
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if done.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def probe(self, ns: str, *args: str, timeout_s: float = 150) -> dict[str, Any]:
        """Run ``tests.netns.probe`` inside ``ns`` (where the edge listens on loopback)."""
        argv = ["-m", "tests.netns.probe", "http://127.0.0.1:8080", *args]
        return self._json_from(ns, argv, timeout_s=timeout_s)

    def netcheck(self, ns: str) -> dict[str, Any]:
        """``edge-agent netcheck --json`` run on the edge's host (exit 1 = no cloud)."""
        argv = ["-m", "edge_agent", "netcheck", "--json", "--signaling", self.signaling_url]
        argv += ["--ca-file", str(self.ca.ca_file)]
        token = {"TANDEM_TOKEN": self.token(Role.EDGE, "netcheck"), **self.trust_env}
        return self._json_from(ns, argv, timeout_s=60, ok=(0, 1), env=token)

    def wait_worker_ready(self, ns: str, timeout_s: float = 90) -> None:
        """Until the worker in ``ns`` has loaded its model and is connected to signaling
        (it registers as it connects): a fleet's workers are up before an edge starts."""

        def ready() -> bool:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            argv = ["-m", "tests.netns.probe", f"http://127.0.0.1:{WORKER_PORT}", "--health"]
            health = self._json_from(ns, argv, timeout_s=10)
            return health.get("status") == "ok" and health.get("signaling") == "connected"

        wait_until(ready, timeout_s=timeout_s, poll_s=0.3, what="the worker registered")

    def wait_cloud_ready(self, ns: str, timeout_s: float = 90) -> float:
        """Seconds until the edge in ``ns`` holds a cloud link."""
        start = time.monotonic()

        def ready() -> bool:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            return bool(self.probe(ns, "--health", timeout_s=10).get("cloud") == "ready")

        wait_until(ready, timeout_s=timeout_s, poll_s=0.3, what="the edge linked to a worker")
        return time.monotonic() - start

    def wait_cloud_path(self, ns: str, path: str, timeout_s: float = 60) -> float:
        """Seconds until the edge in ``ns`` reports its cloud link on ``path``."""
        start = time.monotonic()
        wait_until(
            lambda: self.probe(ns, "--health", timeout_s=10).get("cloud_path") == path,
            timeout_s=timeout_s,
            poll_s=0.3,
            what=f"the edge's link on path {path}",
        )
        return time.monotonic() - start

    def logs(self) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            out.append(f"----- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
