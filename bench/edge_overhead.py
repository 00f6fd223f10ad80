"""What the edge's local path costs over calling the model directly, same run.

Three ways to stream the same greedy answer (same model, prompt, 64 tokens), interleaved
round by round, each round a fresh prompt (so no variant gets a cached prefix):

- ``inproc``: llama-cpp-python's ``create_chat_completion(stream=True)`` in this process
  (the baseline: nothing between the caller and the model);
- ``edge``: ``python -m edge_agent serve`` (local route) over HTTP/SSE;
- ``llamacpp_server``: ``python -m llama_cpp.server`` over HTTP/SSE (what a user would
  otherwise run).

Both HTTP variants are read by the same ``http.client`` loop. Prints median TTFT and
total per variant and the ratios edge/inproc and edge/llama_cpp.server. Targets: total
<= 1.05x in-process and <= 0.90x llama_cpp.server.

All three run with ``OMP_WAIT_POLICY=PASSIVE``, the edge's own default (see
``inference/llama.py``), so that the figures compare serving paths, not OpenMP's idle
policy (which alone moves prompt processing by 2-8x on a loaded 2-core machine).
``--compare-tree DIR`` adds a fourth variant, ``edge_before``: the edge run from another
checkout (e.g. the main branch), for before/after figures in the same run.

    python -m bench.edge_overhead [--rounds 8] [--quick] [--json PATH] [--compare-tree DIR]
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import (
    LLAMA_SERVER_ALIAS,
    StreamTiming,
    bench_args,
    edge_process,
    finish,
    llama_server_process,
    median,
    model_or_exit,
    percentile,
    prompt,
    rounds_of,
    stream_chat,
)

VARIANTS = ("inproc", "edge", "llamacpp_server")


def inproc_stream(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> StreamTiming:
    """The baseline: llama-cpp-python streaming in this process."""
    start = time.perf_counter()
    first = None
    parts: list[str] = []
    for event in llm.create_chat_completion(
        messages=messages, stream=True, max_tokens=max_tokens, temperature=0
    ):
        text = event["choices"][0]["delta"].get("content")
        if text:
            parts.append(text)
            if first is None:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    return StreamTiming(first if first is not None else total, total, len(parts), "".join(parts))


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=8, quick_rounds=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--compare-tree", type=Path, default=None)
    args = parser.parse_args()
    rounds = rounds_of(args)
    model = model_or_exit()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before libgomp loads; inherited
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=2048, verbose=False)
    variants = VARIANTS + (("edge_before",) if args.compare_tree else ())
    results: dict[str, list[StreamTiming]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        logs = Path(tmp)
        edges = {"edge": stack.enter_context(edge_process(logs))}
        if args.compare_tree:
            edges["edge_before"] = stack.enter_context(
                edge_process(logs, tree=args.compare_tree, name="edge_before")
            )
        server = stack.enter_context(llama_server_process(logs, model))

        def run(variant: str, n: int) -> StreamTiming:
            messages = [{"role": "user", "content": prompt(n)}]
            if variant == "inproc":
                return inproc_stream(llm, messages, args.max_tokens)
            if variant in edges:
                return stream_chat(
                    f"{edges[variant].url}/v1",
                    messages,
                    max_tokens=args.max_tokens,
                    headers={"X-Tandem-Route": "local"},
                )
            return stream_chat(
                f"{server.url}/v1",
                messages,
                max_tokens=args.max_tokens,
                model=LLAMA_SERVER_ALIAS,
                # The server's default is 1.1; llama-cpp-python's and the edge's is 1.0:
                # the same sampling, so that all three generate the same text.
                extra={"repeat_penalty": 1.0},
            )

        for variant in variants:  # warm-up, not measured
            run(variant, -1)
        for n in range(rounds):
            k = n % len(variants)
            order = variants[k:] + variants[:k]  # no variant always goes first
            for variant in order:
                results[variant].append(run(variant, n))
    llm.close()
    ttft = {v: median([r.ttft_s * 1000 for r in rs]) for v, rs in results.items()}
    total = {v: median([r.total_s * 1000 for r in rs]) for v, rs in results.items()}

    def same(a: str, b: str) -> float:
        return sum(results[a][i].text == results[b][i].text for i in range(rounds)) / rounds

    figures: dict[str, Any] = {
        "rounds": rounds,
        "max_tokens": args.max_tokens,
        "baseline": "inproc (llama-cpp-python create_chat_completion in the same process)",
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "same_text_share_edge_vs_inproc": same("edge", "inproc"),
        "same_text_share_llamacpp_server_vs_inproc": same("llamacpp_server", "inproc"),
        "chars_median": median([len(r.text) for r in results["inproc"]]),
    }
    for v in variants:
        figures[f"ttft_ms_{v}"] = ttft[v]
        figures[f"total_ms_{v}"] = total[v]
        figures[f"total_ms_p90_{v}"] = percentile([r.total_s * 1000 for r in results[v]], 90)
    figures["ratio_total_edge_vs_inproc"] = total["edge"] / total["inproc"]
    figures["ratio_total_edge_vs_llamacpp_server"] = total["edge"] / total["llamacpp_server"]
    figures["ratio_total_llamacpp_server_vs_inproc"] = total["llamacpp_server"] / total["inproc"]
    figures["ratio_ttft_edge_vs_inproc"] = ttft["edge"] / ttft["inproc"]
    figures["ratio_ttft_edge_vs_llamacpp_server"] = ttft["edge"] / ttft["llamacpp_server"]
    figures["added_ms_per_token_edge_vs_inproc"] = (total["edge"] - total["inproc"]) / max(
        1, args.max_tokens
    )
    if args.compare_tree:
        figures["compare_tree"] = str(args.compare_tree)
        figures["ratio_total_edge_before_vs_inproc"] = total["edge_before"] / total["inproc"]
        figures["ratio_total_edge_vs_edge_before"] = total["edge"] / total["edge_before"]
    finish("edge_overhead", figures, args.json)


if __name__ == "__main__":
    main()
