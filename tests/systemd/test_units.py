"""The shipped systemd units and example configs: systemd accepts the units as written,
and each unit's command line, with its example config, starts the real program."""

from __future__ import annotations

import os
import shlex
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from devstack.stack import free_port
from shared.messages import Role
from tests.support.apps import SECRET, token
from tests.support.tls import CertAuthority
from tests.support.wait import wait_until

pytestmark = pytest.mark.e2e

UNITS = Path(__file__).resolve().parents[2] / "systemd"
PROGRAMS = {"edge": "edge-agent", "worker": "cloud-worker", "signaling": "signaling-server"}
BIN = Path(sys.executable).parent


def unit_text(name: str) -> str:
    return (UNITS / f"tandem-{name}.service").read_text()


def exec_start(name: str) -> list[str]:
    for line in unit_text(name).splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise AssertionError(f"tandem-{name}.service has no ExecStart")


def local_command(name: str, credentials: Path | None = None) -> list[str]:
    """The unit's command with this checkout's programs and example config; ``%d`` (the
    unit's credentials directory) becomes ``credentials``."""
    program, *args = exec_start(name)
    assert program == f"/opt/tandem/venv/bin/{PROGRAMS[name]}"
    config = f"/etc/tandem/{name}.toml"
    assert args[:3] == ["serve", "--config", config], "settings come from the config file"
    rest = args[3:]
    if name != "signaling":  # the peer token is a credential, never in the environment
        assert rest == ["--token-file", "%d/token"], rest
        assert f"LoadCredential=token:/etc/tandem/{name}.token" in unit_text(name)
        assert credentials is not None
        rest = ["--token-file", str(credentials / "token")]
    return [str(BIN / PROGRAMS[name]), "serve", "--config", str(UNITS / f"{name}.toml"), *rest]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    copies = []
    for name in PROGRAMS:
        text = (UNITS / f"tandem-{name}.service").read_text()
        # verify checks that ExecStart exists: point it at this checkout's program.
        text = text.replace("/opt/tandem/venv/bin/", f"{BIN}/")
        copy = tmp_path / f"tandem-{name}.service"
        copy.write_text(text)
        copies.append(str(copy))
    result = subprocess.run(
        [analyze, "verify", *copies], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@contextmanager
def started(
    command: list[str], env: dict[str, str], health: str, context: ssl.SSLContext | None = None
) -> Iterator[None]:
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(health, timeout=2, context=context) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout_s=120, what=f"{command[0]} healthy at {health}")
        yield
    finally:
        proc.terminate()
        try:
            assert proc.wait(20) == 0, "SIGTERM (systemctl stop) must end it cleanly"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_example_configs_start_the_programs(tmp_path: Path) -> None:
    """signaling, a worker and the edge, each from its unit's command line and example
    config (ports, the listen address and the certificate's paths moved with flags,
    which override the file, as they would in a drop-in); over wss://, as the examples
    are, with a certificate from a CA the test makes; the edge escalates to the worker."""
    ports = {name: free_port() for name in PROGRAMS}
    ca = CertAuthority.make(tmp_path / "ca")
    cert = ca.issue(("127.0.0.1",))
    tls = ["--tls-cert", str(cert.cert), "--tls-key", str(cert.key)]
    signal_url = f"wss://127.0.0.1:{ports['signaling']}/v1/signal"
    with ExitStack() as stack:
        stack.enter_context(
            started(
                [
                    *local_command("signaling"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["signaling"]),
                    *tls,
                ],
                {"TANDEM_SECRET": SECRET},
                f"https://127.0.0.1:{ports['signaling']}/healthz",
                ssl.create_default_context(cafile=str(ca.ca_file)),
            )
        )
        common = ["--signaling", signal_url, "--ca-file", str(ca.ca_file)]
        common += ["--ice-host-addresses", "127.0.0.1"]
        credentials = {}
        for name, role in (("worker", Role.WORKER), ("edge", Role.EDGE)):
            credentials[name] = tmp_path / f"credentials-{name}"  # what systemd makes of %d
            credentials[name].mkdir(mode=0o700)
            (credentials[name] / "token").write_text(token(role, f"unit-{name}"))
        stack.enter_context(
            started(
                [
                    *local_command("worker", credentials["worker"]),
                    "--port",
                    str(ports["worker"]),
                    *common,
                ],
                {},
                f"http://127.0.0.1:{ports['worker']}/healthz",
            )
        )
        stack.enter_context(
            started(
                [
                    *local_command("edge", credentials["edge"]),
                    "--port",
                    str(ports["edge"]),
                    *common,
                ],
                {},
                f"http://127.0.0.1:{ports['edge']}/healthz",
            )
        )
        body = (
            b'{"model": "cloud", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}'
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['edge']}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.status == 200 and resp.headers["X-Tandem-Served-By"] == "cloud"
