"""``bench/signaling_load.py --quick`` runs against a real signaling process and reports
every figure the docs quote (no figure is asserted: machines here are shared)."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import run_quick

FIELDS = {
    "peers",
    "peers_alive_after_idle",
    "rss_baseline_mb",
    "rss_with_peers_mb",
    "rss_per_peer_kb",
    "rss_at_10k_peers_mb",
    "idle_cpu_percent",
    "offer_rate",
    "offers_sent",
    "offers_answered",
    "latency_ms",
    "ping_rtt_ms_p50",
    "ratio_p50_to_ping",
    "machine",
}


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    report, stdout = run_quick("signaling_load", tmp_path, "--peers", "50")
    assert report.keys() >= FIELDS
    assert report["peers"] == 50
    assert report["peers_alive_after_idle"] == 50  # every idle peer authenticated and stayed
    assert report["offers_answered"] == report["offers_sent"] > 0  # every offer brokered
    assert set(report["latency_ms"]) == {"p50", "p99"}
    assert "RSS" in stdout and "p99" in stdout


def test_quick_tls_run_measures_wss_peers_against_ws(tmp_path: Path) -> None:
    """``--tls``: idle peers over ws:// (the baseline) then wss:// at each buffer size,
    every one of them connected over TLS to a real ``signaling-server serve``."""
    report, stdout = run_quick(
        "signaling_load",
        tmp_path,
        "--tls",
        "--peers",
        "30",
        "--tls-read-buffer-bytes",
        "16384,262144",
    )
    assert list(report["variants"]) == ["ws", "wss_16384", "wss_262144"]
    for variant in report["variants"].values():
        assert variant["peers_alive"] == 30
        assert {"rss_per_peer_kb", "ratio_to_ws", "rss_at_10k_peers_mb"} <= variant.keys()
    assert report["product_default_tls_read_buffer_bytes"] == 32768
    assert "KB/peer" in stdout and "wss_16384" in stdout
