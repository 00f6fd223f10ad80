"""What escalating costs: edge -> WebRTC data channel -> worker, against the backend
reached directly and against an HTTP reverse proxy making the same hop, same run.

Two parts, each interleaving its variants round by round with a fresh prompt a round:

1. Worker with its own llama.cpp backend (the default): ``inproc`` (llama-cpp-python
   in this process, the worker's backend with nothing in front: the baseline) against
   ``tandem`` (HTTP to the edge, ``X-Tandem-Route: cloud``, data channel to the worker).
2. Worker fronting ``python -m llama_cpp.server`` (``--backend openai``): ``direct``
   (HTTP to the engine: the baseline), ``http_proxy`` (an aiohttp SSE reverse proxy in
   front of it, ``bench/sse_proxy.py``: what a LiteLLM-style proxy does) and ``tandem``
   (edge -> data channel -> worker -> engine).

``added_ttft_ms_p50``/``p99`` are paired per round (tandem minus baseline, same prompt).
Targets: <= 5 ms p50, <= 15 ms p99, and no worse than the proxy. Everything runs with
``OMP_WAIT_POLICY=PASSIVE`` (the edge's and worker's default).

    python -m bench.escalation_overhead [--rounds 12] [--quick] [--json PATH]
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
    LLAMA_SERVER_ALIAS,
    Proc,
    StreamTiming,
    bench_args,
    finish,
    llama_server_process,
    median,
    model_or_exit,
    percentile,
    prompt,
    rounds_of,
    spawn,
    stream_chat,
    wait_http,
)
from bench.edge_overhead import inproc_stream
from devstack.stack import Stack, StackConfig, free_port

CLOUD = {"X-Tandem-Route": "cloud"}


@contextmanager
def stack(logs: Path, worker_args: list[str]) -> Iterator[Stack]:
    config = StackConfig(
        signaling_port=free_port(),
        worker_port=free_port(),
        edge_port=free_port(),
        log_dir=logs,
        log_level="WARNING",
        edge_args=["--insecure-no-api-key"],
        worker_args=worker_args,
    )
    with Stack(config) as running:
        yield running


@contextmanager
def sse_proxy(logs: Path, upstream: str) -> Iterator[Proc]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.sse_proxy", "--port", str(port), "--upstream", upstream]
    proc = spawn("sse_proxy", argv, logs, port)
    try:
        wait_http(proc, f"{proc.url}/v1/models", lambda b: bool(b.get("data")), 60)
        yield proc
    finally:
        proc.stop()


def paired_added(tandem: list[StreamTiming], base: list[StreamTiming]) -> list[float]:
    return [(t.ttft_s - b.ttft_s) * 1000 for t, b in zip(tandem, base, strict=True)]


def summarize(results: dict[str, list[StreamTiming]], prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for variant, timings in results.items():
        out[f"{prefix}ttft_ms_{variant}"] = median([t.ttft_s * 1000 for t in timings])
        out[f"{prefix}ttft_ms_p99_{variant}"] = percentile([t.ttft_s * 1000 for t in timings], 99)
        out[f"{prefix}total_ms_{variant}"] = median([t.total_s * 1000 for t in timings])
    return out


def interleave(
    variants: dict[str, Any], rounds: int, max_tokens: int
) -> dict[str, list[StreamTiming]]:
    """Run every variant once per round (rotating who goes first) after one warm-up."""
    names = list(variants)
    results: dict[str, list[StreamTiming]] = {v: [] for v in names}
    for name in names:
        variants[name](-1, max_tokens)
    for n in range(rounds):
        k = n % len(names)
        for name in names[k:] + names[:k]:
            results[name].append(variants[name](n, max_tokens))
    return results


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=12, quick_rounds=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--skip-openai", action="store_true", help="only part 1 (no llama_cpp.server)"
    )
    args = parser.parse_args()
    rounds = rounds_of(args)
    model = model_or_exit()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import llama_cpp

    def msgs(n: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt(n)}]

    figures: dict[str, Any] = {
        "rounds": rounds,
        "max_tokens": args.max_tokens,
        "baseline": "part 1: the worker's backend in-process; part 2: llama_cpp.server direct",
    }
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        # Part 1: the worker's own llama.cpp backend.
        llm = llama_cpp.Llama(model_path=str(model), n_ctx=2048, verbose=False)
        with stack(logs / "llama", []) as running:
            edge_v1 = f"{running.edge_url}/v1"
            part1 = interleave(
                {
                    "inproc": lambda n, m: inproc_stream(llm, msgs(n), m),
                    "tandem": lambda n, m: stream_chat(
                        edge_v1, msgs(n), max_tokens=m, headers=CLOUD
                    ),
                },
                rounds,
                args.max_tokens,
            )
        llm.close()
        added = paired_added(part1["tandem"], part1["inproc"])
        figures.update(summarize(part1, ""))
        figures["added_ttft_ms_p50"] = median(added)
        figures["added_ttft_ms_p99"] = percentile(added, 99)
        figures["ratio_ttft_tandem_vs_inproc"] = (
            figures["ttft_ms_tandem"] / figures["ttft_ms_inproc"]
        )
        figures["ratio_total_tandem_vs_inproc"] = (
            figures["total_ms_tandem"] / figures["total_ms_inproc"]
        )
        if not args.skip_openai:
            with ExitStack() as started:
                engine = started.enter_context(llama_server_process(logs, model))
                proxy = started.enter_context(sse_proxy(logs, engine.url))
                worker_args = [
                    "--backend", "openai", "--upstream-url", f"{engine.url}/v1",
                    "--upstream-continuation", "completions",
                    "--upstream-chat-template", str(model),
                    # llama_cpp.server answers nothing else while it generates; on a
                    # loaded machine its health checks fail. Latency is measured here.
                    "--upstream-unhealthy-after", "1000",
                ]  # fmt: skip
                running = started.enter_context(stack(logs / "openai", worker_args))
                edge_v1 = f"{running.edge_url}/v1"
                same: dict[str, Any] = {
                    "model": LLAMA_SERVER_ALIAS,
                    "extra": {"repeat_penalty": 1.0},
                }
                direct_v1 = f"{engine.url}/v1"

                def flush() -> None:
                    """All three variants reach the same engine, which reuses the longest
                    prefix of its previous request: without this, whoever asks a prompt
                    second would skip its processing."""
                    stream_chat(
                        direct_v1, [{"role": "user", "content": "Hi"}], max_tokens=1, **same
                    )

                def direct(n: int, m: int) -> StreamTiming:
                    flush()
                    return stream_chat(direct_v1, msgs(n), max_tokens=m, **same)

                def proxied(n: int, m: int) -> StreamTiming:
                    flush()
                    return stream_chat(f"{proxy.url}/v1", msgs(n), max_tokens=m, **same)

                def tandem(n: int, m: int) -> StreamTiming:
                    flush()
                    return stream_chat(edge_v1, msgs(n), max_tokens=m, headers=CLOUD)

                part2 = interleave(
                    {"direct": direct, "http_proxy": proxied, "tandem": tandem},
                    rounds,
                    args.max_tokens,
                )
            figures.update(summarize(part2, "openai_"))
            t_added = paired_added(part2["tandem"], part2["direct"])
            p_added = paired_added(part2["http_proxy"], part2["direct"])
            figures["openai_added_ttft_ms_p50"] = median(t_added)
            figures["openai_added_ttft_ms_p99"] = percentile(t_added, 99)
            figures["openai_proxy_added_ttft_ms_p50"] = median(p_added)
            figures["openai_proxy_added_ttft_ms_p99"] = percentile(p_added, 99)
            figures["ratio_ttft_vs_http_proxy"] = (
                figures["openai_ttft_ms_tandem"] / figures["openai_ttft_ms_http_proxy"]
            )
            figures["ratio_total_vs_http_proxy"] = (
                figures["openai_total_ms_tandem"] / figures["openai_total_ms_http_proxy"]
            )
    finish("escalation_overhead", figures, args.json)


if __name__ == "__main__":
    main()
