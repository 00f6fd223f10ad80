"""The ``install`` and ``uninstall`` subcommands each program adds to its CLI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from daemon.spec import InstallSpec

__all__ = ["add_install_commands", "run_install_command"]

COMMANDS = ("install", "uninstall")


def add_install_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], spec: InstallSpec
) -> None:
    """Add ``install`` and ``uninstall`` to a program's subcommands."""
    install = commands.add_parser(
        "install",
        help=f"install {spec.unit} (user, unit, config, secrets); prints the systemctl commands",
        description=f"Create the tandem system user, write /etc/systemd/system/{spec.unit} "
        f"(the shipped unit, pointed at this installation), /etc/tandem/{spec.name}.toml "
        f"(commented config), /etc/tandem/{spec.name}.env (every TANDEM_* setting, commented) "
        "and the secret files, then print the systemctl commands that start it. Existing "
        "config and secrets are kept. Run as root.",
    )
    _common(install)
    if spec.takes_model:
        install.add_argument(
            "--model",
            type=Path,
            default=None,
            metavar="GGUF",
            help="the model file the service loads [default: the bundled small model]",
        )
    install.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where {spec.program} is installed [default: this Python's bin directory]",
    )
    uninstall = commands.add_parser(
        "uninstall",
        help=f"stop and remove {spec.unit} and its config (secrets stay unless --purge)",
        description=f"Disable and stop {spec.unit}, remove the unit and its config. The secrets "
        f"(/etc/tandem/{spec.name}.env and its credentials) and /var/lib/tandem stay unless "
        "--purge; the tandem user always stays.",
    )
    _common(uninstall)
    uninstall.add_argument(
        "--purge", action="store_true", help="also remove the secrets and /var/lib/tandem"
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="install under DIR instead of / (an image, a test) [default: /]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be written, change nothing"
    )


def run_install_command(args: argparse.Namespace, spec: InstallSpec) -> int:
    """Run ``install`` or ``uninstall``; the exit status."""
    from daemon.install import Installer, InstallError  # here: see daemon.spec

    prog = spec.program
    try:
        installer = Installer(
            spec, root=args.root.absolute(), bin_dir=getattr(args, "bin_dir", None)
        )
        if args.command == "install":
            plan = installer.plan_install(getattr(args, "model", None))
        else:
            plan = installer.plan_uninstall(purge=args.purge)
        if not args.dry_run and os.geteuid() != 0:
            raise InstallError("run as root (or with --dry-run to see what it would do)")
        if args.dry_run:
            installer.show(plan, dry_run=True)
        else:
            installer.apply(plan)
    except (InstallError, OSError) as exc:
        print(f"{prog} {args.command}: {exc}", file=sys.stderr)
        return 1
    if plan.commands:
        heading = "then, as root:" if args.command == "install" else "as root:"
        print(heading)
        print("\n".join(f"  {line}" for line in plan.commands))
    return 0
