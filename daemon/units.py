"""The shipped unit files and example configs (``systemd/`` in the source tree), which
the installer turns into the installed ones: one source, never a second copy.

A checkout (or an editable install) reads them in place; a wheel carries them as data
files under ``<prefix>/share/tandem/systemd`` (``[tool.setuptools.data-files]``).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["SHIPPED_BIN_DIR", "shipped_dir"]

SHIPPED_BIN_DIR = "/opt/tandem/venv/bin"
"""Where the shipped units expect the programs; the installer points them at the real
ones."""


def shipped_dir() -> Path:
    """The directory holding ``tandem-*.service`` and ``*.toml``; ``FileNotFoundError``
    if this installation has neither copy."""
    candidates = (
        Path(__file__).resolve().parents[1] / "systemd",
        Path(sys.prefix) / "share" / "tandem" / "systemd",
    )
    for candidate in candidates:
        if (candidate / "tandem-edge.service").is_file():
            return candidate
    raise FileNotFoundError(
        "the shipped systemd units are missing (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); install Tandem from its source tree or wheel"
    )
