"""``<program> install`` / ``uninstall`` under ``--root`` (a temporary directory, so the
host is never touched), through the real command lines: the user, the unit (the shipped
one, same sandbox, pointed at this installation), the commented config, the secrets,
and what uninstall leaves."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_worker.settings import WorkerSettings
from daemon.install import HIDDEN_FROM_SERVICE
from edge_agent.settings import EdgeSettings
from inference import resolve_model
from shared.messages import Role
from shared.settings import TandemSettings
from shared.tokens import verify_token
from signaling.settings import SignalingSettings
from tests.systemd.test_units import BIN, PROGRAMS, UNITS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install writes root-owned files")

SETTINGS: dict[str, type[TandemSettings]] = {
    "edge": EdgeSettings,
    "worker": WorkerSettings,
    "signaling": SignalingSettings,
}
SECRET_FILES = {"edge": ["edge.env", "edge.token"], "worker": ["worker.env", "worker.token"]}
SECRET_FILES["signaling"] = ["signaling.env"]


@pytest.fixture(scope="module")
def service_model() -> Iterator[Path]:
    """The bundled GGUF where a sandboxed service could read it. ``install`` rightly refuses
    a model under /tmp or /home, which is where the bundled one lies when this checkout
    (and its venv) does, as in CI: then a copy under /var/lib, removed afterwards."""
    bundled = resolve_model(None)
    if not any(bundled.is_relative_to(hidden) for hidden in HIDDEN_FROM_SERVICE):
        yield bundled
        return
    folder = Path(tempfile.mkdtemp(prefix="tandem-test-model-", dir="/var/lib"))
    try:
        yield Path(shutil.copy2(bundled, folder / bundled.name))
    finally:
        shutil.rmtree(folder)


def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / PROGRAMS[name]), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def install(name: str, root: Path, *args: str) -> str:
    result = run(name, "install", "--root", str(root), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def gid(root: Path, group: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return int(fields[2])
    raise AssertionError(f"no group {group} in {root}/etc/group")


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    return found


def exposure(unit: Path) -> float:
    result = subprocess.run(
        [analyze(), "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    return float(found.group(1))


def mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_mode & 0o7777, info.st_uid, info.st_gid


@pytest.mark.parametrize("name", PROGRAMS)
def test_install_writes_user_unit_config_and_secrets(
    name: str, tmp_path: Path, service_model: Path
) -> None:
    root = tmp_path / "root"
    model = service_model if name != "signaling" else None
    out = install(name, root, *(["--model", str(model)] if model else []))
    unit_name = f"tandem-{name}.service"

    passwd = (root / "etc/passwd").read_text()
    assert re.search(r"^tandem:x:\d+:\d+:[^:]*:/var/lib/tandem:/usr/sbin/nologin$", passwd, re.M)
    tandem = gid(root, "tandem")
    assert mode(root / "etc/tandem") == (0o750, 0, tandem)

    # The unit: the shipped one, every line the same but ExecStart (this installation's
    # program) and a header saying where it came from.
    unit = root / "etc/systemd/system" / unit_name
    assert mode(unit) == (0o644, 0, 0)
    shipped = (UNITS / unit_name).read_text().splitlines()
    written = unit.read_text().splitlines()
    header = [line for line in written[: len(written) - len(shipped)]]
    assert header and all(line.startswith("# ") for line in header)
    body = written[len(header) :]
    changed = [(a, b) for a, b in zip(shipped, body, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("ExecStart=/opt/tandem/venv/bin/")
    assert changed[0][1] == changed[0][0].replace("/opt/tandem/venv/bin", str(BIN))
    verify = subprocess.run(
        [analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    shipped_copy = tmp_path / unit_name
    shipped_copy.write_text(
        (UNITS / unit_name).read_text().replace("/opt/tandem/venv/bin", str(BIN))
    )
    assert exposure(unit) == exposure(shipped_copy)

    # The config: the shipped example, with the model the operator named.
    config = root / f"etc/tandem/{name}.toml"
    assert mode(config) == (0o640, 0, tandem)
    settings = tomllib.loads(config.read_text())
    if model is not None:
        assert settings["model"] == str(model)
    assert {k: v for k, v in settings.items() if k != "model"} == {
        k: v for k, v in tomllib.loads((UNITS / f"{name}.toml").read_text()).items()
    }

    # The secrets: root-only; the credential files the unit loads exist (empty).
    for secret in SECRET_FILES[name]:
        assert mode(root / "etc/tandem" / secret) == (0o600, 0, 0), secret
    for credential in re.findall(r"^LoadCredential=\w+:(\S+)$", unit.read_text(), re.M):
        assert (root / credential.lstrip("/")).read_text() == ""

    for command in ("systemctl daemon-reload", f"systemctl enable --now {unit_name}"):
        assert f"  {command}\n" in out, out


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_env_file_lists_every_setting_and_the_program_accepts_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every TANDEM_* setting is there, commented, with its default: uncommenting them all
    gives the defaults back. Signaling's has a fresh secret, which signs tokens."""
    root = tmp_path / "root"
    install(name, root)
    text = (root / f"etc/tandem/{name}.env").read_text()
    settings = SETTINGS[name]
    listed = re.findall(r"^#?(TANDEM_\w+)=", text, re.M)
    assert sorted(listed) == sorted(f"TANDEM_{field.upper()}" for field in settings.model_fields)
    active = dict(re.findall(r"^(TANDEM_\w+)=(.*)$", text, re.M))
    assert list(active) == (["TANDEM_SECRET"] if name == "signaling" else [])
    for key, value in re.findall(r"^#(TANDEM_\w+)=(.+)$", text, re.M):
        monkeypatch.setenv(key, value)
    for key, value in active.items():
        monkeypatch.setenv(key, value)
    loaded = settings()
    defaults = settings.model_construct()
    for field in settings.model_fields:
        if field != "secret":
            assert getattr(loaded, field) == getattr(defaults, field), field
    if name == "signaling":
        secret = active["TANDEM_SECRET"]
        assert len(secret) >= 32
        minted = subprocess.run(
            [str(BIN / "signaling-server"), "token", "--role", "edge", "--peer-id", "pi"],
            env={**os.environ, "TANDEM_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        claims = verify_token(secret, minted.stdout.strip(), now=time.time())
        assert claims.role is Role.EDGE


def test_dry_run_prints_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = run("signaling", "install", "--root", str(root), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    assert f"would write {root}/etc/systemd/system/tandem-signaling.service" in result.stdout
    assert "    | Type=notify" in result.stdout  # the unit's text
    assert "    | TANDEM_SECRET=<random, made at install>" in result.stdout  # never a real one
    assert "systemctl enable --now tandem-signaling.service" in result.stdout


def test_reinstall_keeps_config_and_secrets_and_rewrites_the_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install("edge", root)
    token = root / "etc/tandem/edge.token"
    config = root / "etc/tandem/edge.toml"
    unit = root / "etc/systemd/system/tandem-edge.service"
    token.write_text("the-edge-token\n")
    config.write_text("port = 9000\n")
    unit.write_text("[Service]\n")
    out = install("edge", root)
    assert token.read_text() == "the-edge-token\n" and config.read_text() == "port = 9000\n"
    assert f"kept {config} (exists)" in out
    assert "Type=notify" in unit.read_text()


def test_a_model_the_sandbox_hides_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"  # under /tmp: PrivateTmp= gives the service its own
    model.write_bytes(b"GGUF")
    result = run("worker", "install", "--root", str(tmp_path / "root"), "--model", str(model))
    assert result.returncode == 1 and "cannot see /tmp" in result.stderr
    missing = run("edge", "install", "--root", str(tmp_path / "root"), "--model", "/nonexistent")
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert not (tmp_path / "root").exists()


def test_uninstall_removes_unit_and_config_and_keeps_secrets_unless_purge(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install("edge", root)
    install("worker", root)
    systemd = root / "etc/systemd/system"
    wants = systemd / "multi-user.target.wants"
    wants.mkdir()
    (wants / "tandem-edge.service").symlink_to("/etc/systemd/system/tandem-edge.service")
    state = root / "var/lib/tandem"
    state.mkdir(parents=True)

    result = run("edge", "uninstall", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert not (systemd / "tandem-edge.service").exists()
    assert not (wants / "tandem-edge.service").is_symlink()  # what `enable` made
    assert not (root / "etc/tandem/edge.toml").exists()
    for kept in ("etc/tandem/edge.env", "etc/tandem/edge.token", "var/lib/tandem"):
        assert (root / kept).exists(), kept
        assert f"kept {root / kept}" in result.stdout
    assert "systemctl disable --now tandem-edge.service" in result.stdout
    assert (systemd / "tandem-worker.service").exists()  # the other program is untouched

    purged = run("edge", "uninstall", "--root", str(root), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/tandem/edge.env").exists()
    assert not (root / "etc/tandem/edge.token").exists()
    assert state.exists()  # the worker still uses it
    assert run("worker", "uninstall", "--root", str(root), "--purge").returncode == 0
    assert not state.exists()
    assert "tandem:" in (root / "etc/passwd").read_text()  # the user stays (ids not reused)
