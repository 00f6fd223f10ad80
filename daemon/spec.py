"""``InstallSpec``: what one program's ``install`` writes, apart from the installer.

Every program builds its spec at import (``edge_agent/install.py``...) to add the
``install`` and ``uninstall`` subcommands; the installer itself (``daemon.install``, with
its env-file renderer and system calls) is imported only when one of them runs, so that
``serve`` does not pay for it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["InstallSpec"]


@dataclass(frozen=True)
class InstallSpec:
    """What one program installs."""

    name: str  # edge, worker, signaling: tandem-<name>.service, /etc/tandem/<name>.*
    program: str  # the console script in ExecStart=
    settings: type[BaseModel]
    credentials: tuple[str, ...] = ()  # LoadCredential= ids, as /etc/tandem/<name>.<id>
    takes_model: bool = False
    generated_secrets: tuple[str, ...] = ()  # TANDEM_* written with a random value
    next_steps: tuple[str, ...] = ()  # what to edit before starting

    @property
    def unit(self) -> str:
        return f"tandem-{self.name}.service"
