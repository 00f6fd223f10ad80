"""``<program> install`` / ``uninstall``: one command from a pip-installed Tandem to a
running systemd service, and back.

What ``install`` writes (under ``--root``, ``/`` by default), each from the shipped files
in ``systemd/`` (``daemon.units``), never from a second copy:

- ``/etc/sysusers.d/tandem.conf`` and the ``tandem`` system user and group it declares,
  created by ``systemd-sysusers --root`` (``useradd`` where sysusers is missing). A real
  user, not ``DynamicUser=``: the three units share ``/var/lib/tandem`` (models, state),
  and the config files are group-readable by ``tandem``, which needs a stable id.
- ``/etc/systemd/system/tandem-<name>.service``: the shipped unit with ``ExecStart=``
  pointing at this installation's program (every sandbox directive unchanged). Always
  rewritten: local changes belong in a drop-in (``systemctl edit``), which survives.
- ``/etc/tandem/<name>.toml`` (0640 root:tandem): the shipped, commented example config;
  ``--model`` fills in ``model =``. Kept if it exists.
- ``/etc/tandem/<name>.env`` (0600 root): every ``TANDEM_*`` setting, commented out
  (signaling's gets a fresh random ``TANDEM_SECRET``). Kept if it exists.
- The secrets: ``/etc/tandem/<name>.token`` (0600 root, empty until you paste the peer
  token), which the unit hands to the service with ``LoadCredential=``: only root reads
  the file, the service reads its private copy. Kept if it exists.

``uninstall`` stops and disables the unit (on a running systemd, else it prints how),
removes the unit and the config, and keeps the secrets (token, env file) and
``/var/lib/tandem`` unless ``--purge``. The ``tandem`` user stays: files it owns may
remain, and a reused id would hand them to someone else.
"""

from __future__ import annotations

import grp
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.envfile import render_env_file
from daemon.spec import InstallSpec
from daemon.units import SHIPPED_BIN_DIR, shipped_dir

__all__ = ["InstallError", "InstallSpec", "Installer", "Plan"]

USER = "tandem"
SYSUSERS = f'u {USER} - "Tandem services" /var/lib/tandem /usr/sbin/nologin\n'
HIDDEN_FROM_SERVICE = ("/home", "/root", "/run/user", "/tmp", "/var/tmp")
"""ProtectHome= and PrivateTmp= hide these from the service: a model there is not found."""


class InstallError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass
class Step:
    """One change: write a file, make a directory, remove a path or run a command."""

    kind: str  # "write" | "mkdir" | "remove" | "run"
    path: Path | None = None
    text: str = ""
    mode: int = 0o644
    group: str | None = None  # None: root's group
    argv: tuple[str, ...] = ()
    note: str = ""
    shown: str | None = None  # what --dry-run prints instead of ``text`` (secrets masked)

    def describe(self) -> str:
        if self.kind == "run":
            return f"run: {' '.join(self.argv)}"
        owner = f"root:{self.group or 'root'}"
        if self.kind == "write":
            return f"write {self.path} ({self.mode:04o} {owner}){self.note}"
        if self.kind == "mkdir":
            return f"mkdir {self.path} ({self.mode:04o} {owner})"
        return f"remove {self.path}{self.note}"


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # printed for the operator


class Installer:
    """Plans and applies ``install``/``uninstall`` for one ``InstallSpec`` under ``root``."""

    def __init__(
        self,
        spec: InstallSpec,
        *,
        root: Path = Path("/"),
        bin_dir: Path | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.spec = spec
        self.root = root
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.out = out
        self.source = shipped_dir()

    def target(self, path: str) -> Path:
        """``path`` (absolute, as the service sees it) under ``--root``."""
        return self.root / path.lstrip("/")

    # -- install --------------------------------------------------------------------

    def unit_text(self) -> str:
        """The shipped unit, pointed at this installation's program."""
        program = self.bin_dir / self.spec.program
        shipped = (self.source / self.spec.unit).read_text()
        if f"{SHIPPED_BIN_DIR}/{self.spec.program} " not in shipped:
            raise InstallError(f"{self.spec.unit}: ExecStart= does not name {self.spec.program}")
        header = (
            f"# Written by `{self.spec.program} install` from {self.source / self.spec.unit}.\n"
            f"# Reinstalling rewrites this file: put local changes in a drop-in\n"
            f"# (`systemctl edit {self.spec.unit}`).\n"
        )
        if any(c.isspace() for c in str(program)):
            raise InstallError(f"{program}: a path with spaces cannot go in ExecStart=")
        return header + shipped.replace(f"{SHIPPED_BIN_DIR}/{self.spec.program} ", f"{program} ")

    def config_text(self, model: Path | None) -> str:
        text = (self.source / f"{self.spec.name}.toml").read_text()
        if model is None:
            return text
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.lstrip("# ").startswith("model ="):
                lines[i] = f'model = "{model}"'
                return "\n".join(lines) + "\n"
        return text + f'\nmodel = "{model}"\n'

    def env_text(self, *, masked: bool = False) -> str:
        generated = {
            env: "<random, made at install>" if masked else secrets.token_urlsafe(32)
            for env in self.spec.generated_secrets
        }
        notes = {"token_file": "The unit passes --token-file (a credential), which wins."}
        return render_env_file(
            self.spec.settings,
            title=f"/etc/tandem/{self.spec.name}.env — TANDEM_* settings of {self.spec.unit}",
            set_values=generated,
            notes={k: v for k, v in notes.items() if k in self.spec.settings.model_fields},
        )

    def check_model(self, model: Path | None) -> Path | None:
        if model is None:
            return None
        if not self.spec.takes_model:
            raise InstallError(f"{self.spec.program} takes no --model")
        model = model.expanduser().absolute()
        if not model.is_file():
            raise InstallError(f"--model {model}: no such file")
        for hidden in HIDDEN_FROM_SERVICE:
            if model.is_relative_to(hidden):
                raise InstallError(
                    f"--model {model}: the service cannot see {hidden} (ProtectHome=/PrivateTmp= "
                    "in its sandbox); move the model to e.g. /var/lib/tandem/models/ first"
                )
        return model

    def plan_install(self, model: Path | None = None) -> Plan:
        model = self.check_model(model)
        program = self.bin_dir / self.spec.program
        if not program.is_file():
            raise InstallError(
                f"{program} does not exist (--bin-dir: where {self.spec.program} is)"
            )
        plan = Plan()
        sysusers = "/etc/sysusers.d/tandem.conf"
        plan.steps.append(Step("write", self.target(sysusers), SYSUSERS, 0o644))
        plan.steps.append(self._create_user_step(sysusers))
        plan.steps.append(Step("mkdir", self.target("/etc/tandem"), mode=0o750, group=USER))
        unit = self.target(f"/etc/systemd/system/{self.spec.unit}")
        plan.steps.append(Step("write", unit, self.unit_text(), 0o644))
        name = self.spec.name
        config = self.target(f"/etc/tandem/{name}.toml")
        self._write_once(plan, config, lambda: self.config_text(model), 0o640, USER)
        if model is not None and config.exists():
            plan.kept.append(f'--model not applied: set model = "{model}" in {config}')
        env = self.target(f"/etc/tandem/{name}.env")
        self._write_once(plan, env, self.env_text, 0o600)
        if plan.steps[-1].path == env:
            plan.steps[-1].shown = self.env_text(masked=True)
        for credential in self.spec.credentials:
            path = self.target(f"/etc/tandem/{name}.{credential}")
            self._write_once(plan, path, lambda: "", 0o600, note=" (secret, empty)")
        plan.commands = [
            *self.spec.next_steps,
            "systemctl daemon-reload",
            f"systemctl enable --now {self.spec.unit}",
            f"systemctl status {self.spec.unit}    # active (running) once it sent READY=1",
            f"journalctl -u {self.spec.unit} -f",
        ]
        return plan

    def _write_once(
        self,
        plan: Plan,
        path: Path,
        text: Callable[[], str],
        mode: int,
        group: str | None = None,
        note: str = "",
    ) -> None:
        if path.exists():
            plan.kept.append(f"kept {path} (exists)")
        else:
            plan.steps.append(Step("write", path, text(), mode, group, note=note))

    def _create_user_step(self, sysusers: str) -> Step:
        root = str(self.root)
        if shutil.which("systemd-sysusers"):
            return Step(
                "run", argv=("systemd-sysusers", "--root", root, str(self.target(sysusers)))
            )
        return Step(
            "run",
            argv=(
                "useradd",
                "--root",
                root,
                "--system",
                "--user-group",
                "--home-dir",
                "/var/lib/tandem",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ),
        )

    # -- uninstall ------------------------------------------------------------------

    def plan_uninstall(self, *, purge: bool = False) -> Plan:
        plan = Plan()
        name, unit = self.spec.name, self.spec.unit
        live = self.root == Path("/") and Path("/run/systemd/system").is_dir()
        if live:
            plan.steps.append(Step("run", argv=("systemctl", "disable", "--now", unit)))
        systemd_dir = self.target("/etc/systemd/system")
        if systemd_dir.is_dir():  # enable's symlinks, for an offline root
            for wants in sorted(systemd_dir.glob("*.wants")):
                link = wants / unit  # dangling under --root: glob would not see it
                if link.is_symlink():
                    plan.steps.append(Step("remove", link))
        for path in (systemd_dir / unit, self.target(f"/etc/tandem/{name}.toml")):
            if path.exists():
                plan.steps.append(Step("remove", path))
        secret_files = [self.target(f"/etc/tandem/{name}.env")] + [
            self.target(f"/etc/tandem/{name}.{c}") for c in self.spec.credentials
        ]
        for path in secret_files:
            if not path.exists():
                continue
            if purge:
                plan.steps.append(Step("remove", path, note=" (secret, --purge)"))
            else:
                plan.kept.append(f"kept {path} (secret; --purge removes it)")
        others = (
            [u for u in systemd_dir.glob("tandem-*.service") if u.name != unit]
            if systemd_dir.is_dir()
            else []
        )
        state = self.target("/var/lib/tandem")
        if purge and not others and state.exists():
            plan.steps.append(Step("remove", state, note=" (state and models, --purge)"))
        elif state.exists():
            plan.kept.append(f"kept {state} (state and models; --purge removes it)")
        if live:
            plan.steps.append(Step("run", argv=("systemctl", "daemon-reload")))
        else:
            plan.commands = [
                f"systemctl disable --now {unit}   # if it is still running",
                "systemctl daemon-reload",
            ]
        return plan

    # -- applying -------------------------------------------------------------------

    def show(self, plan: Plan, *, dry_run: bool) -> None:
        for step in plan.steps:
            self.out(("would " if dry_run else "") + step.describe())
            text = step.text if step.shown is None else step.shown
            if dry_run and step.kind == "write" and text:
                self.out("".join(f"    | {line}\n" for line in text.splitlines()).rstrip())
        for line in plan.kept:
            self.out(line)

    def apply(self, plan: Plan) -> None:
        for step in plan.steps:
            self.out(step.describe())
            if step.kind == "run":
                result = subprocess.run(step.argv, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise InstallError(f"{' '.join(step.argv)} failed: {result.stderr.strip()}")
                continue
            assert step.path is not None
            if step.kind == "remove":
                if step.path.is_dir() and not step.path.is_symlink():
                    shutil.rmtree(step.path)
                else:
                    step.path.unlink(missing_ok=True)
                continue
            if step.kind == "mkdir":
                step.path.mkdir(parents=True, exist_ok=True)
            else:
                step.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(step.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, step.mode)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(step.text)
            os.chmod(step.path, step.mode)  # the umask must not loosen or tighten it
            os.chown(step.path, 0, self._gid(step.group))
        for line in plan.kept:
            self.out(line)

    def _gid(self, group: str | None) -> int:
        """The group's id in ``--root``'s /etc/group (which is the host's for ``/``)."""
        if group is None:
            return 0
        if self.root == Path("/"):
            return grp.getgrnam(group).gr_gid
        for line in self.target("/etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group:
                return int(fields[2])
        raise InstallError(f"no group {group} in {self.target('/etc/group')}")
