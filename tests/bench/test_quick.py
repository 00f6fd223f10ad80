"""Every benchmark still runs: each with ``--quick``, its JSON has the fields it promises
and they are finite numbers. Benchmarks are not tests: nothing here asserts a timing or
a ratio's value (the machine is shared; the figures live in bench/README.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.bench import ROOT, run_quick
from tests.support.model import model_path

pytestmark = pytest.mark.e2e

CASES = {
    "edge_overhead": (
        [],
        [
            "ratio_total_edge_vs_inproc",
            "ratio_total_edge_vs_llamacpp_server",
            "ttft_ms_inproc",
            "ttft_ms_edge",
            "ttft_ms_llamacpp_server",
            "total_ms_inproc",
            "total_ms_edge",
            "total_ms_llamacpp_server",
        ],
    ),
    "channel_capacity": (
        ["--compare-tree", str(ROOT)],  # this tree as its own "before": the option works
        [
            "tokens_per_s_1",
            "tokens_per_s_16",
            "tokens_per_s_64",
            "tokens_per_s_64_before",
            "ratio_tokens_64_vs_before",
            "ttft_ms_1",
            "raw_messages_per_s",
            "raw_messages_per_s_burst256",
        ],
    ),
    "connect": (
        [],
        ["cold_ms_p50", "cold_ms_p99", "bare_handshake_ms_p50", "warm_ms_p50", "warm_ms_p99"],
    ),
    "edge_start": (
        ["--compare-tree", str(ROOT)],  # this tree as its own "before": the option works
        [
            "bare_aiohttp_ms_p50",
            "api_ms_p50",
            "first_token_ms_p50",
            "local_ready_ms_p50",
            "first_token_before_ms_p50",
            "ratio_first_token_vs_bare_aiohttp",
            "ratio_first_token_vs_before",
        ],
    ),
    "escalation_overhead": (
        [],
        [
            "added_ttft_ms_p50",
            "added_ttft_ms_p99",
            "ratio_ttft_vs_http_proxy",
            "ttft_ms_tandem",
            "openai_ttft_ms_direct",
            "openai_ttft_ms_http_proxy",
            "openai_ttft_ms_tandem",
        ],
    ),
    "hybrid": (
        ["--limit", "3", "--max-tokens", "8"],
        [
            "ratio_mean_hybrid_vs_cloud",
            "ratio_cloud_tokens_hybrid_vs_cloud",
            "ttft_ms_mean_hybrid",
            "ttft_ms_p99_hybrid",
            "total_ms_mean_cloud",
            "cloud_tokens_cloud",
        ],
    ),
    "multiturn": (
        ["--turns", "2", "--max-tokens", "8"],
        [
            "ttft_ms_turn2_cold",
            "ttft_ms_turn2_cached",
            "ttft_ms_turn2_edge_kv",
            "ratio_ttft_last_turn_cached_vs_cold",
            "ratio_ttft_last_turn_edge_kv_vs_cold",
        ],
    ),
    "second_look": (
        [],
        [
            "ttft_ms_plain_p50",
            "ttft_ms_look_p50",
            "added_ttft_ms_p50",
            "prefill_ms_p50",
            "look_score_us",
            "look_ms_500_p99",
            "look_cpu_ms_500_p99",
            "ratio_ttft_look_vs_plain",
            "ratio_prefill_vs_plain_ttft",
        ],
    ),
    "footprint": (
        ["--idle-s", "1"],
        [
            "rss_mb_idle_edge",
            "rss_mb_idle_llamacpp_server",
            "idle_cpu_pct_edge",
            "idle_cpu_pct_llamacpp_server",
            "ratio_rss_idle_edge_vs_llamacpp_server",
            "budget_tokens_per_s_pi",
            "budget_ttft_ms_pi",
            "ratio_tokens_per_s_pi_vs_free",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_quick_and_writes_its_fields(name: str, tmp_path: Path) -> None:
    model_path()  # a clear failure if the bundled model is missing
    extra, fields = CASES[name]
    figures, _ = run_quick(name, tmp_path, *extra)
    assert figures["benchmark"] == name
    for field in fields:
        value = figures[field]
        assert isinstance(value, (int, float)), (field, value)
        assert math.isfinite(value), (field, value)
