"""The ``signaling-server`` command line."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from shared.messages import Role, Welcome
from shared.tokens import verify_token
from signaling.__main__ import main
from tests.signaling.support import SECRET, Peer, token_for
from tests.support.wait import eventually

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(extra)
    return env


@pytest.fixture
def no_tandem_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TANDEM_"):
            monkeypatch.delenv(key)


def test_token_command_prints_a_verifiable_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "signaling", "token", "--role", "worker", "--peer-id", "gpu-1"],
        cwd=REPO,
        env=clean_env(TANDEM_SECRET=SECRET),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = verify_token(SECRET, token, now=time.time(), role=Role.WORKER)
    assert claims.peer_id == "gpu-1"
    assert claims.expires_at - time.time() == pytest.approx(86400, abs=60)


def test_token_ttl_and_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_tandem_env: None
) -> None:
    config = tmp_path / "signaling.toml"
    config.write_text(f'secret = "{SECRET}"\n')
    argv = ["token", "--role", "edge", "--peer-id", "pi-1", "--ttl", "60", "--config", str(config)]
    assert main(argv) == 0
    claims = verify_token(SECRET, capsys.readouterr().out.strip(), now=time.time(), role=Role.EDGE)
    assert claims.expires_at - time.time() == pytest.approx(60, abs=5)


def test_token_without_secret_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], no_tandem_env: None
) -> None:
    assert main(["token", "--role", "edge", "--peer-id", "pi-1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "TANDEM_SECRET" in err


def test_short_secret_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_tandem_env: None
) -> None:
    monkeypatch.setenv("TANDEM_SECRET", "tooshort-secret")
    assert main(["token", "--role", "edge", "--peer-id", "pi-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 32 bytes" in err
    assert "tooshort-secret" not in err


def test_serve_rejects_invalid_settings_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_tandem_env: None
) -> None:
    monkeypatch.setenv("TANDEM_SECRET", SECRET)
    assert main(["serve", "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "port" in err


def test_serve_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["serve", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--host", "--config", "--stun-url", "--offer-timeout-s", "TANDEM_PORT"):
        assert flag in out
    assert "example:" in out


def test_token_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["token", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "--role" in out and "--peer-id" in out and "signaling-server token --role" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_runs_until_interrupted() -> None:
    port = free_port()
    base = f"127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "signaling", "serve", "--port", str(port)],
        cwd=REPO,
        env=clean_env(TANDEM_SECRET=SECRET),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                try:
                    async with session.get(f"http://{base}/healthz") as response:
                        assert await response.json() == {"status": "ok", "workers": 0, "edges": 0}
                        return True
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(answers, timeout_s=60, what="signaling-server serve answers /healthz")
            headers = {"Authorization": f"Bearer {token_for(Role.EDGE, 'pi-1', now=time.time())}"}
            async with session.ws_connect(f"ws://{base}/v1/signal", headers=headers) as ws:
                peer = Peer(ws)
                assert isinstance(await peer.recv(), Welcome)
                proc.send_signal(signal.SIGINT)  # as Ctrl-C
                assert await peer.closed_with() == 1001
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    log = stderr.decode()
    assert f"signaling listening on ws://{base}/v1/signal" in log
    assert SECRET not in log


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files line")


async def test_serve_lifts_its_open_files_limit_to_the_hard_one() -> None:
    """One socket per peer: a soft limit of 1024 (systemd's default) would cap the
    peers near a thousand, far below what memory allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip("needs a finite hard limit above 256")
    port = free_port()

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "signaling", "serve", "--port", str(port)],
        cwd=REPO,
        env=clean_env(TANDEM_SECRET=SECRET),
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=low_soft_limit,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(answers, timeout_s=60, what="signaling-server serve answers")
        assert _open_files_limits(proc.pid) == (hard, hard)
    finally:
        proc.terminate()
        await proc.wait()
