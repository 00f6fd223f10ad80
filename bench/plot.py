"""Draw the suite's figures: one PNG per JSON in ``bench/results/`` into ``bench/plots/``.

    python -m bench.plot [--results bench/results] [--out bench/plots]

Each benchmark gets the chart that reads best for it (medians per variant, the named
baseline first); any other JSON gets its ``ratio_*`` fields against the 1.0 line.
matplotlib is a dev dependency only: nothing at run time imports this.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _bars(ax: Any, labels: list[str], values: list[float], title: str, unit: str) -> None:
    bars = ax.bar(labels, values, color=["#777777"] + ["#3a7ca5"] * (len(values) - 1))
    ax.set_title(title)
    ax.set_ylabel(unit)
    for bar, value in zip(bars, values, strict=True):
        if math.isfinite(value):
            ax.annotate(
                f"{value:.1f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)


def _variants(fig: dict[str, Any], prefix: str, order: list[str]) -> tuple[list[str], list[float]]:
    names = [v for v in order if f"{prefix}{v}" in fig]
    return names, [float(fig[f"{prefix}{v}"]) for v in names]


def plot_edge_overhead(fig: dict[str, Any], out: Path) -> None:
    order = ["inproc", "edge", "edge_before", "llamacpp_server"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (("ttft_ms_", "TTFT, median"), ("total_ms_", "64 tokens streamed, median"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        names, values = _variants(fig, key, order)
        _bars(ax, names, values, title, "ms")
    figure.suptitle(
        f"edge overhead: edge/in-process x{fig['ratio_total_edge_vs_inproc']:.3f}, "
        f"edge/llama_cpp.server x{fig['ratio_total_edge_vs_llamacpp_server']:.3f}"
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_escalation(fig: dict[str, Any], out: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    names, values = _variants(fig, "ttft_ms_", ["inproc", "tandem"])
    _bars(axes[0], names, values, "worker's llama.cpp backend: TTFT", "ms")
    names, values = _variants(fig, "openai_ttft_ms_", ["direct", "http_proxy", "tandem"])
    _bars(axes[1], names, values, "fronting llama_cpp.server: TTFT", "ms")
    figure.suptitle(
        f"escalation: +{fig['added_ttft_ms_p50']:.1f} ms p50, +{fig['added_ttft_ms_p99']:.1f} ms"
        f" p99 TTFT; vs HTTP proxy x{fig.get('ratio_ttft_vs_http_proxy', math.nan):.2f}"
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_footprint(fig: dict[str, Any], out: Path) -> None:
    order = [v for v in ("llamacpp_server", "edge_before", "edge") if f"rss_mb_idle_{v}" in fig]
    figure, ax = plt.subplots(figsize=(7, 4))
    anon = [float(fig.get(f"rss_anon_mb_idle_{v}", 0)) for v in order]
    file_ = [float(fig.get(f"rss_file_mb_idle_{v}", 0)) for v in order]
    ax.bar(order, anon, label="anonymous (heap, KV cache)", color="#3a7ca5")
    ax.bar(order, file_, bottom=anon, label="file-backed (model mmap, libraries)", color="#9cc5e0")
    ax.axhline(250, color="#c0392b", linestyle="--", linewidth=1, label="target 250 MB")
    for i, v in enumerate(order):
        ax.annotate(f"{fig[f'rss_mb_idle_{v}']:.0f} MB", (i, anon[i] + file_[i]), ha="center")
    ax.set_ylabel("resident MB, idle, model loaded")
    ax.set_title(f"footprint (idle CPU: edge {fig['idle_cpu_pct_edge']:.2f} %)")
    ax.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_ratios(fig: dict[str, Any], out: Path) -> None:
    ratios = {k: float(v) for k, v in fig.items() if k.startswith("ratio_")}
    figure, ax = plt.subplots(figsize=(8, 0.5 + 0.4 * max(1, len(ratios))))
    ax.barh(list(ratios), list(ratios.values()), color="#3a7ca5")
    ax.axvline(1.0, color="#777777", linewidth=1)
    ax.set_title(str(fig.get("benchmark", out.stem)))
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_channel(fig: dict[str, Any], out: Path) -> None:
    counts = [1, 16, 64]
    figure, ax = plt.subplots(figsize=(8, 4))
    width = 0.38
    series = [("_before", "before", "#777777"), ("", "after", "#3a7ca5")]
    shown = [s for s in series if f"tokens_per_s_1{s[0]}" in fig]
    for i, (suffix, label, colour) in enumerate(shown):
        xs = [c + (i - (len(shown) - 1) / 2) * width for c in range(len(counts))]
        values = [float(fig[f"tokens_per_s_{n}{suffix}"]) for n in counts]
        ax.bar(xs, values, width, label=label, color=colour)
    ax.axhline(float(fig["raw_messages_per_s"]), color="#c0392b", linestyle="--",
               label="raw aiortc messages/s")  # fmt: skip
    ax.axhline(20_000, color="#2e7d32", linestyle=":", label="target 20,000 tokens/s")
    ax.set_xticks(range(len(counts)), [f"{n} stream{'s' if n > 1 else ''}" for n in counts])
    ax.set_ylabel("tokens/s through one channel")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("channel capacity (fast worker, loopback)")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_multiturn(fig: dict[str, Any], out: Path) -> None:
    turns = int(fig["turns"])
    figure, ax = plt.subplots(figsize=(7, 4))
    for mode, color in (("cold", "#777777"), ("cached", "#3a7ca5")):
        values = [float(fig[f"ttft_ms_turn{t}_{mode}"]) for t in range(1, turns + 1)]
        ax.plot(range(1, turns + 1), values, marker="o", label=mode, color=color)
    ax.set_xlabel("turn")
    ax.set_ylabel("TTFT, median ms")
    ax.set_title(
        f"multi-turn, {fig['conversations']} interleaved conversations: turn {turns} "
        f"cached/cold x{fig['ratio_ttft_last_turn_cached_vs_cold']:.2f}"
    )
    ax.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_hybrid(fig: dict[str, Any], out: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(12, 4))
    order = ["cloud", "edge", "hybrid"]
    names, values = _variants(fig, "ttft_ms_mean_", order)
    _bars(axes[0], names, values, "TTFT, mean", "ms")
    names, values = _variants(fig, "total_ms_mean_", order)
    _bars(axes[1], names, values, "total, mean", "ms")
    names, values = _variants(fig, "cloud_tokens_", order)
    _bars(axes[2], names, values, "cloud tokens", "tokens")
    figure.suptitle(
        f"hybrid, WAN RTT {fig['rtt_ms']:.0f} ms, {fig['prompts']} prompts: mean "
        f"x{fig['ratio_mean_hybrid_vs_cloud']:.2f} of all-cloud, cloud tokens "
        f"x{fig['ratio_cloud_tokens_hybrid_vs_cloud']:.2f}, recall {fig['router_cloud_recall']:.2f}"
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


PLOTTERS = {
    "multiturn": plot_multiturn,
    "hybrid": plot_hybrid,
    "edge_overhead": plot_edge_overhead,
    "escalation_overhead": plot_escalation,
    "footprint": plot_footprint,
    "channel_capacity": plot_channel,
}


HEADLINES = {
    "edge_overhead": [
        "ratio_total_edge_vs_inproc",
        "ratio_total_edge_vs_llamacpp_server",
        "ratio_total_edge_vs_edge_before",
        "ttft_ms_inproc",
        "ttft_ms_edge",
        "ttft_ms_llamacpp_server",
        "total_ms_inproc",
        "total_ms_edge",
        "total_ms_llamacpp_server",
    ],
    "escalation_overhead": [
        "added_ttft_ms_p50",
        "added_ttft_ms_p99",
        "ratio_ttft_vs_http_proxy",
        "openai_added_ttft_ms_p50",
        "openai_proxy_added_ttft_ms_p50",
        "ratio_total_vs_http_proxy",
    ],
    "footprint": [
        "rss_mb_idle_edge",
        "rss_mb_idle_edge_before",
        "rss_mb_idle_llamacpp_server",
        "rss_mb_after_answer_edge",
        "idle_cpu_pct_edge",
        "idle_cpu_pct_llamacpp_server",
        "budget_memory_cap",
        "budget_tokens_per_s_pi",
        "budget_ttft_ms_pi",
        "ratio_tokens_per_s_pi_vs_free",
    ],
    "channel_capacity": [
        "tokens_per_s_1",
        "tokens_per_s_16",
        "tokens_per_s_64",
        "tokens_per_s_1_before",
        "tokens_per_s_16_before",
        "tokens_per_s_64_before",
        "raw_messages_per_s",
        "raw_messages_per_s_burst256",
        "ratio_tokens_64_vs_raw_messages",
        "ratio_tokens_64_vs_before",
        "ttft_ms_1",
        "ttft_ms_1_before",
    ],
    "connect": [
        "cold_ms_p50",
        "cold_ms_p99",
        "bare_handshake_ms_p50",
        "warm_ms_p50",
        "warm_ms_p99",
        "ratio_cold_vs_bare_handshake",
    ],
    "edge_start": [
        "bare_aiohttp_ms_p50",
        "api_ms_p50",
        "first_token_ms_p50",
        "local_ready_ms_p50",
        "api_before_ms_p50",
        "first_token_before_ms_p50",
        "ratio_first_token_vs_bare_aiohttp",
        "ratio_first_token_vs_before",
    ],
    "multiturn": [
        "ttft_ms_turn6_cold",
        "ttft_ms_turn6_cached",
        "ttft_ms_turn6_edge_kv",
        "ratio_ttft_turn6_cached_vs_cold",
        "ratio_ttft_turn6_edge_kv_vs_cold",
    ],
    "hybrid": [
        "prompts",
        "rtt_ms",
        "ttft_ms_mean_cloud",
        "ttft_ms_mean_hybrid",
        "ttft_ms_p99_cloud",
        "ttft_ms_p99_hybrid",
        "total_ms_mean_cloud",
        "total_ms_mean_edge",
        "total_ms_mean_hybrid",
        "ratio_mean_hybrid_vs_cloud",
        "ratio_cloud_tokens_hybrid_vs_cloud",
        "router_cloud_recall",
    ],
}


def markdown(results: Path) -> str:
    """The headline fields of every result, as markdown (for bench/README.md)."""
    lines = []
    for path in sorted(results.glob("*.json")):
        fig = json.loads(path.read_text())
        name = str(fig.get("benchmark", path.stem))
        cells = []
        for key in HEADLINES.get(name, [k for k in fig if k.startswith("ratio_")]):
            if key in fig:
                value = fig[key]
                if isinstance(value, float):
                    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
                else:
                    shown = str(value)
                cells.append(f"`{key}` {shown}")
        lines.append(f"- **{name}** ({fig.get('measured_at', '?')}): " + ", ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--out", type=Path, default=Path("bench/plots"))
    parser.add_argument(
        "--markdown", action="store_true", help="print the headline figures as markdown"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(args.results))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(args.results.glob("*.json")):
        fig = json.loads(path.read_text())
        out = args.out / f"{path.stem}.png"
        PLOTTERS.get(str(fig.get("benchmark")), plot_ratios)(fig, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
