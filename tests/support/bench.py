"""Running a benchmark the way its quick test does: ``python -m bench.NAME --quick``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "run_quick"]

ROOT = Path(__file__).resolve().parents[2]


def run_quick(name: str, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """``bench.NAME --quick --json FILE ARGS`` from the checkout's root: its JSON report
    and its standard output. A bench that fails fails the test, with what it printed."""
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report, proc.stdout
