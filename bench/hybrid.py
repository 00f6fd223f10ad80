"""The headline: a hybrid edge against all-cloud (and all-edge) on labelled prompts, with
the cloud behind an emulated WAN, same run.

Prompts come from ``data/router_dev.jsonl`` (or any file in that format; ``--limit``
takes an evenly spread sample, keeping the local/cloud mix). Every prompt is asked three
ways, interleaved: ``X-Tandem-Route: local`` (all-edge), ``cloud`` (all-cloud: the
baseline) and ``auto`` (hybrid: the router decides). Reports mean and p99 of TTFT and
total, the cloud's completion tokens, ``ratio_mean_hybrid_vs_cloud``,
``ratio_cloud_tokens_hybrid_vs_cloud`` and the router's cloud recall (share of prompts
labelled ``cloud`` that hybrid sent to the cloud). Targets: mean <= 0.45x all-cloud with
<= 0.40x its cloud tokens, recall >= 0.95.

The WAN: this kernel has no ``sch_netem``, so a user-space delay line
(``bench/delay_line.py``) delays every byte by ``--rtt``/2 each way. It sits between the
worker and its engine (``--backend openai`` fronting ``python -m llama_cpp.server``):
for a stream over a link that is already open (the data channel is), a request and
every chunk back cross it once each way, which is what the edge -> worker WAN costs a
request. Both sides run the bundled 135M model on the same cores here, so the cloud is
not faster than the edge as a GPU would be: read the latency shape and the token
ratio, not the model speeds.

    python -m bench.hybrid [--rtt 200] [--limit 40] [--quick] [--json PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    Proc,
    StreamTiming,
    bench_args,
    finish,
    llama_server_process,
    model_or_exit,
    percentile,
    spawn,
    stream_chat,
    wait_http,
)
from bench.escalation_overhead import stack
from devstack.stack import free_port
from router_lab.dataset import read_dataset

MODES = ("cloud", "local", "auto")


@contextmanager
def delay_line(logs: Path, to: Proc, one_way_ms: float) -> Iterator[Proc]:
    port = free_port()
    argv = [
        sys.executable, "-m", "bench.delay_line", "--listen", str(port),
        "--to", f"127.0.0.1:{to.port}", "--one-way-ms", str(one_way_ms),
    ]  # fmt: skip
    proc = spawn("delay_line", argv, logs, port)
    try:
        wait_http(proc, f"{proc.url}/v1/models", lambda b: bool(b.get("data")), 60)
        yield proc
    finally:
        proc.stop()


def sample(items: list[Any], limit: int) -> list[Any]:
    if limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=1, quick_rounds=1)
    parser.add_argument("dataset", nargs="?", type=Path, default=Path("data/router_dev.jsonl"))
    parser.add_argument("--rtt", type=float, default=200.0, help="WAN round trip, ms")
    parser.add_argument("--limit", type=int, default=None, help="prompts; default 40, quick 4")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    limit = args.limit or (4 if args.quick else 40)
    items = sample(read_dataset(args.dataset), limit)
    model = model_or_exit()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results: dict[str, list[StreamTiming]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        logs = Path(tmp)
        engine = started.enter_context(llama_server_process(logs, model))
        wan = started.enter_context(delay_line(logs, engine, args.rtt / 2))
        worker_args = [
            "--backend", "openai", "--upstream-url", f"{wan.url}/v1",
            "--upstream-continuation", "completions", "--upstream-chat-template", str(model),
            # llama_cpp.server answers nothing else while it generates; on a loaded
            # machine its health checks fail for a while. Latency is measured, not health.
            "--upstream-unhealthy-after", "1000",
        ]  # fmt: skip
        running = started.enter_context(stack(logs / "stack", worker_args))
        edge_v1 = f"{running.edge_url}/v1"

        def ask(mode: str, messages: list[dict[str, str]]) -> StreamTiming:
            headers = {} if mode == "auto" else {"X-Tandem-Route": mode}
            return stream_chat(
                edge_v1,
                messages,
                max_tokens=args.max_tokens,
                headers=headers,
                extra={"stream_options": {"include_usage": True}},
            )

        warm = [{"role": "user", "content": "Hello"}]
        for mode in MODES:
            ask(mode, warm)
        for i, item in enumerate(items):
            messages = [m.model_dump(exclude_none=True) for m in (item.request.messages or ())]
            k = i % len(MODES)
            for mode in MODES[k:] + MODES[:k]:
                results[mode].append(ask(mode, messages))
    figures: dict[str, Any] = {
        "baseline": "all-cloud (every prompt X-Tandem-Route: cloud), same run",
        "dataset": str(args.dataset),
        "prompts": len(items),
        "rtt_ms": args.rtt,
        "max_tokens": args.max_tokens,
    }
    names = {"cloud": "cloud", "local": "edge", "auto": "hybrid"}
    for mode, timings in results.items():
        name = names[mode]
        ttfts = [t.ttft_s * 1000 for t in timings]
        totals = [t.total_s * 1000 for t in timings]
        figures[f"ttft_ms_mean_{name}"] = mean(ttfts)
        figures[f"ttft_ms_p99_{name}"] = percentile(ttfts, 99)
        figures[f"total_ms_mean_{name}"] = mean(totals)
        figures[f"total_ms_p99_{name}"] = percentile(totals, 99)
        figures[f"cloud_tokens_{name}"] = sum(
            t.tokens for t in timings if (t.served_by or "") == "cloud"
        )
        figures[f"served_by_cloud_share_{name}"] = sum(
            (t.served_by or "") == "cloud" for t in timings
        ) / max(1, len(timings))
    figures["ratio_mean_hybrid_vs_cloud"] = (
        figures["total_ms_mean_hybrid"] / figures["total_ms_mean_cloud"]
    )
    figures["ratio_mean_ttft_hybrid_vs_cloud"] = (
        figures["ttft_ms_mean_hybrid"] / figures["ttft_ms_mean_cloud"]
    )
    figures["ratio_cloud_tokens_hybrid_vs_cloud"] = figures["cloud_tokens_hybrid"] / max(
        1, figures["cloud_tokens_cloud"]
    )
    labelled_cloud = [
        r for item, r in zip(items, results["auto"], strict=True) if item.label.value == "cloud"
    ]
    figures["router_cloud_recall"] = (
        sum((r.served_by or "") == "cloud" for r in labelled_cloud) / len(labelled_cloud)
        if labelled_cloud
        else float("nan")
    )
    figures["labelled_cloud_prompts"] = len(labelled_cloud)
    figures["requests"] = [
        {
            "id": item.id,
            "label": item.label.value,
            **{
                f"{names[mode]}_{field}": value
                for mode in MODES
                for field, value in (
                    ("served_by", results[mode][i].served_by),
                    ("ttft_ms", round(results[mode][i].ttft_s * 1000, 1)),
                    ("total_ms", round(results[mode][i].total_s * 1000, 1)),
                    ("tokens", results[mode][i].tokens),
                )
            },
        }
        for i, item in enumerate(items)
    ]
    finish("hybrid", figures, args.json)


if __name__ == "__main__":
    main()
