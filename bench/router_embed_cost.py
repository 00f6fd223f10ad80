"""What an embedding-based routing decision would cost, against today's decision, same run.

For a 500-token prompt (a real English prompt from the dev set, repeated to 500 tokens
of the bundled model's vocabulary), times on the calling thread:

- ``features``: today's decision (feature extraction plus the boosted trees);
- ``table``: tokenising with the bundled model's vocabulary, then the mean of the input
  token-embedding rows and a dot product with a head (``router_lab.embed``);
- ``model``: the transformer's mean-pooled embedding through llama.cpp, one thread
  (``--model-rounds`` times only: seconds each; 0 skips it);
- ``tokenize``: the tokeniser pass alone (most of ``table``);
- ``edge``: what the edge runs with the shipped token head (``edge_agent.router.table``):
  feature extraction, tokenising the routing text, the folded head (one weight per
  token) blended with the trees.

Pin it to one core to measure what the issue asks: ``taskset -c 0 python bench/...``.
Prints p50/p99 per representation and their ratios to ``features``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import percentile
from edge_agent.router import Router, RouterConfig
from edge_agent.router.features import extract_features
from edge_agent.router.table import load_token_head, with_head_tokens
from inference.models import bundled_model_path
from router_lab.dataset import read_dataset
from router_lab.embed import model_embedder, token_table
from shared.messages import ChatMessage, GenerateRequest

TOKENS = 500


def main() -> None:
    parser = argparse.ArgumentParser(description="Routing decision cost per representation.")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--model-rounds", type=int, default=5)
    args = parser.parse_args()
    tokenizer, table = token_table()
    seed = next(
        str(i.request.messages[-1].content)
        for i in read_dataset(Path("data/router_dev.jsonl"))
        if i.request.messages and len(str(i.request.messages[-1].content)) > 400
    )
    text = seed
    while len(tokenizer.tokenize(text.encode(), add_bos=False)) < TOKENS:
        text += "\n" + seed
    tokens = tokenizer.tokenize(text.encode(), add_bos=False)[:TOKENS]
    text = tokenizer.detokenize(tokens).decode("utf-8", "ignore")
    request = GenerateRequest(request_id="b", messages=(ChatMessage(role="user", content=text),))
    router = Router(RouterConfig())
    head = np.asarray(np.random.default_rng(0).normal(size=table.shape[1]), dtype=np.float32)

    def features() -> None:
        router.decide(extract_features(request), requested="auto", cloud_available=True)

    def by_table() -> None:
        ids = tokenizer.tokenize(text.encode("utf-8"), add_bos=False)
        float(table[np.asarray(ids)].mean(axis=0) @ head)

    embed = model_embedder() if args.model_rounds else None

    def by_model() -> None:
        assert embed is not None
        float(np.asarray(embed(text)) @ head)

    edge_router = Router(RouterConfig(), token_head=load_token_head(bundled_model_path()))
    token_head = edge_router.token_head
    if token_head is None:
        raise SystemExit("the shipped token head does not match the bundled GGUF")

    def local_ids(text: str) -> list[int]:
        return list(tokenizer.tokenize(text.encode("utf-8"), add_bos=False))

    def edge() -> None:
        features = with_head_tokens(
            extract_features(request),
            request,
            local_ids,
            token_head,
            last_ask=edge_router.prompt_head is not None,
        )
        edge_router.decide(features, requested="auto", cloud_available=True)

    def tokenize_only() -> None:
        tokenizer.tokenize(text.encode("utf-8"), add_bos=False)

    times: dict[str, list[float]] = {
        "features": [],
        "edge": [],
        "table": [],
        "tokenize": [],
        "model": [],
    }
    for name, call, rounds in (
        ("features", features, args.rounds),
        ("edge", edge, args.rounds),
        ("table", by_table, args.rounds),
        ("tokenize", tokenize_only, args.rounds),
        ("model", by_model, args.model_rounds),
    ):
        if not rounds:
            continue
        call()  # warm-up
        for _ in range(rounds):
            start = time.perf_counter_ns()
            call()
            times[name].append((time.perf_counter_ns() - start) / 1e6)
    base = percentile(times["features"], 99)
    print(f"one {len(tokens)}-token prompt; rounds: {args.rounds} ({args.model_rounds} for model)")
    for name, values in times.items():
        if not values:
            continue
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(
            f"  {name:9s} p50 {p50:9.3f} ms   p99 {p99:9.3f} ms   p99/features {p99 / base:8.1f}x"
        )


if __name__ == "__main__":
    main()
