"""How much embeddings slow chat generation down, and what they cost, on this machine.

Runs the real local model (the bundled SmolLM2 unless ``--model``) and an
``EmbeddingRunner`` on the same file, as the edge does, and prints:

* chat decode speed alone (the baseline) and while embedding requests run back to back,
  as a ratio against that baseline (1.0 = no slowdown);
* embedding throughput (inputs/s, tokens/s) alone and while chat generates;
* the embedding context's extra anonymous memory (peak, after a full-length input).

    .venv/bin/python bench/embeddings_share.py --max-input-tokens 512 --chat-tokens 96

On a machine with fewer free cores than both threads need, the two compete; the point
of the separate thread is that neither waits for the other to finish a whole request.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from inference import LlamaRunner, RunnerConfig, bundled_model_path
from inference.embeddings import EmbeddingConfig, EmbeddingRunner
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

TEXT = "Edge devices answer simple prompts locally and hand hard ones to the cloud. " * 6


def _anon_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _chat_tokens_per_s(runner: LlamaRunner, n_tokens: int) -> float:
    request = GenerateRequest(
        request_id="bench",
        messages=(ChatMessage(role="user", content="Write a long story about a lighthouse."),),
        params=SamplingParams(max_tokens=n_tokens, temperature=0.0),
    )
    first: float | None = None
    count = 0
    async for event in runner.stream(request):
        if isinstance(event, TokenChunk):
            if first is None:
                first = time.perf_counter()
            else:
                count += event.n_tokens
    assert first is not None
    return count / (time.perf_counter() - first)


async def _embed_for(embedder: EmbeddingRunner, stop: asyncio.Event) -> tuple[int, int, float]:
    inputs = tokens = 0
    start = time.perf_counter()
    while not stop.is_set():
        result = await embedder.embed([TEXT] * 4, truncate=True)
        inputs += 4
        tokens += result.prompt_tokens
    return inputs, tokens, time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    path: Path | None = args.model or bundled_model_path()
    if path is None:
        raise SystemExit("no --model and the bundled model is not installed")
    runner = LlamaRunner(RunnerConfig(model_path=path, n_ctx=1024, n_threads=args.chat_threads))
    await runner.load()
    embedder = EmbeddingRunner(
        EmbeddingConfig(
            model_path=path,
            max_input_tokens=args.max_input_tokens,
            n_threads=args.embedding_threads,
        )
    )
    try:
        before = _anon_mb()
        await embedder.embed(["word " * (args.max_input_tokens * 2)], truncate=True)
        memory = _anon_mb() - before
        alone = await _chat_tokens_per_s(runner, args.chat_tokens)
        stop = asyncio.Event()
        stop.set()
        start = time.perf_counter()
        solo = await embedder.embed([TEXT] * 16, truncate=True)
        embed_alone_s = time.perf_counter() - start
        stop.clear()
        background = asyncio.create_task(_embed_for(embedder, stop))
        shared = await _chat_tokens_per_s(runner, args.chat_tokens)
        stop.set()
        inputs, tokens, seconds = await background
    finally:
        await embedder.aclose()
        await runner.aclose()
    print(f"model: {path.name}")
    print(f"embedding context memory (anonymous, peak): {memory:.0f} MB")
    print(f"chat decode alone (baseline): {alone:.1f} tok/s")
    print(f"chat decode while embedding:  {shared:.1f} tok/s  ratio {shared / alone:.2f}")
    print(
        f"embeddings alone: {16 / embed_alone_s:.1f} inputs/s, "
        f"{solo.prompt_tokens / embed_alone_s:.0f} tok/s (baseline)"
    )
    print(
        f"embeddings while chatting: {inputs / seconds:.1f} inputs/s, {tokens / seconds:.0f} "
        f"tok/s  ratio {(tokens / seconds) / (solo.prompt_tokens / embed_alone_s):.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--max-input-tokens", type=int, default=512)
    parser.add_argument("--chat-tokens", type=int, default=96)
    parser.add_argument("--chat-threads", type=int, default=None)
    parser.add_argument("--embedding-threads", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
