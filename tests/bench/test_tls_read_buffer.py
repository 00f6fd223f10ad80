"""``bench/tls_read_buffer.py --quick`` pushes bulk data through a real asyncio TLS
server at each read buffer size and reports every figure docs/signaling.md quotes (no
figure is asserted: machines here are shared)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path


def test_quick_run_reports_each_size_against_asyncios_own(tmp_path: Path) -> None:
    out = tmp_path / "tls.json"
    argv = ["-m", "bench.tls_read_buffer", "--quick", "--sizes", "16384,32768"]
    done = subprocess.run(
        [sys.executable, *argv, "--json", str(out)],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    sizes = [r["read_buffer_bytes"] for r in report["results"]]
    assert sizes == [262144, 16384, 32768]  # the baseline first
    for result in report["results"]:
        assert result["received_mb"] == round(16 * 1024 * 1024 / 1e6, 1)  # every byte
        for key in ("mb_per_s", "server_cpu_s_per_gb", "throughput_ratio", "cpu_ratio"):
            assert math.isfinite(result[key]) and result[key] > 0, (key, result)
    assert "MB/s" in done.stdout
