"""``bench/tls_read_buffer.py --quick`` pushes bulk data through a real asyncio TLS
server at each read buffer size and reports every figure docs/signaling.md quotes (no
figure is asserted: machines here are shared)."""

from __future__ import annotations

import math
from pathlib import Path

from tests.support.bench import run_quick


def test_quick_run_reports_each_size_against_asyncios_own(tmp_path: Path) -> None:
    report, stdout = run_quick("tls_read_buffer", tmp_path, "--sizes", "16384,32768")
    sizes = [r["read_buffer_bytes"] for r in report["results"]]
    assert sizes == [262144, 16384, 32768]  # the baseline first
    for result in report["results"]:
        assert result["received_mb"] == round(16 * 1024 * 1024 / 1e6, 1)  # every byte
        for key in ("mb_per_s", "server_cpu_s_per_gb", "throughput_ratio", "cpu_ratio"):
            assert math.isfinite(result[key]) and result[key] > 0, (key, result)
    assert "MB/s" in stdout
