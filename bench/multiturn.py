"""Multi-turn chat: does keeping conversations' KV state pay? Four conversations, six
turns each, interleaved (as four users of one device would be), each turn sending the
whole history, through llama-cpp-python in this process:

- ``cold`` (the baseline): one context; interleaving means each turn's prompt shares
  only the chat template's first tokens with the previous request, so the whole history
  is processed again;
- ``cached``: the same with ``LlamaRAMCache`` (llama-cpp-python saves the context's
  state after each answer and loads the longest-prefix state before the next prompt),
  so a conversation's next turn processes only what is new;
- ``edge_kv``: the edge's own runner (``inference.LlamaRunner``) with its KV cache on
  (``--kv-cache-mb 64``; ``inference/kvcache.py``).

Reports TTFT per turn (median over conversations and rounds),
``ratio_ttft_turn6_cached_vs_cold`` and ``ratio_ttft_turn6_edge_kv_vs_cold``. Target
<= 0.3x.

    python -m bench.multiturn [--rounds 2] [--quick] [--json PATH]
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from bench.common import bench_args, finish, median, model_or_exit, rounds_of
from bench.edge_overhead import inproc_stream

CONVERSATIONS = 4
TURNS = 6
QUESTIONS = [
    "Tell me about the planet Mars.",
    "What is its atmosphere made of?",
    "Could people live there one day?",
    "What would they eat?",
    "How long would the trip take?",
    "Summarize what we said in one sentence.",
]


def ttft(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, str]:
    timing = inproc_stream(llm, messages, max_tokens)
    return timing.ttft_s, timing.text


class EdgeRunner:
    """The edge's runner, driven synchronously like a ``Llama`` (its own event loop)."""

    def __init__(self, model: Any, kv_bytes: int) -> None:
        from inference import LlamaRunner, RunnerConfig

        self.loop = asyncio.new_event_loop()
        config = RunnerConfig(model_path=model, n_ctx=2048, kv_cache_bytes=kv_bytes)
        self.runner = LlamaRunner(config)
        self.loop.run_until_complete(self.runner.load())

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.aclose())
        self.loop.close()


def edge_ttft(
    edge: EdgeRunner, messages: list[dict[str, str]], max_tokens: int
) -> tuple[float, str]:
    from shared import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

    request = GenerateRequest(
        request_id=uuid.uuid4().hex,
        messages=tuple(ChatMessage(**m) for m in messages),  # type: ignore[arg-type]
        params=SamplingParams(max_tokens=max_tokens, temperature=0),
    )

    async def run() -> tuple[float, str]:
        start = time.perf_counter()
        first = None
        parts: list[str] = []
        async for event in edge.runner.stream(request):
            if isinstance(event, TokenChunk) and event.text:
                parts.append(event.text)
                if first is None:
                    first = time.perf_counter() - start
        return (first if first is not None else time.perf_counter() - start), "".join(parts)

    return edge.loop.run_until_complete(run())


def conversation_round(llm: Any, turns: int, max_tokens: int, tag: str) -> list[list[float]]:
    """TTFT [turn][conversation] for one pass of interleaved conversations."""
    histories: list[list[dict[str, str]]] = [
        [{"role": "system", "content": f"You are assistant {tag}-{c}. Answer briefly."}]
        for c in range(CONVERSATIONS)
    ]
    out: list[list[float]] = []
    for turn in range(turns):
        row = []
        for history in histories:
            history.append({"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]})
            if isinstance(llm, EdgeRunner):
                seconds, answer = edge_ttft(llm, history, max_tokens)
            else:
                seconds, answer = ttft(llm, history, max_tokens)
            history.append({"role": "assistant", "content": answer})
            row.append(seconds)
        out.append(row)
    return out


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=2, quick_rounds=1)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--turns", type=int, default=None, help=f"default {TURNS}; --quick: 3")
    args = parser.parse_args()
    rounds = rounds_of(args)
    turns = args.turns or (3 if args.quick else TURNS)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import llama_cpp

    model = model_or_exit()
    llms: dict[str, Any] = {
        "cold": llama_cpp.Llama(model_path=str(model), n_ctx=2048, verbose=False),
        "cached": llama_cpp.Llama(model_path=str(model), n_ctx=2048, verbose=False),
        "edge_kv": EdgeRunner(model, 64 << 20),
    }
    from llama_cpp.llama_cache import LlamaRAMCache

    # Note: each saved state also holds a copy of the scores of every token evaluated
    # (n_tokens x n_vocab floats, tens of MB here), which ``capacity_bytes`` does not
    # count: this process grows to a few GB. A KV reuse in the edge must keep only the
    # sequence's KV cells (``llama_state_seq_get_data``) to fit a Pi.
    llms["cached"].set_cache(LlamaRAMCache(capacity_bytes=256 << 20))
    per_turn: dict[str, list[list[float]]] = {m: [[] for _ in range(turns)] for m in llms}
    for r in range(rounds):
        order = list(llms) if r % 2 == 0 else list(reversed(llms))
        for mode in order:
            # A fresh system prompt per round and mode: no state from an earlier pass.
            for turn, row in enumerate(
                conversation_round(llms[mode], turns, args.max_tokens, f"{mode}{r}")
            ):
                per_turn[mode][turn].extend(row)
    for llm in llms.values():
        llm.close()
    figures: dict[str, Any] = {
        "baseline": "cold: the same interleaved conversations without state reuse",
        "rounds": rounds,
        "conversations": CONVERSATIONS,
        "turns": turns,
    }
    for mode, rows in per_turn.items():
        for turn, values in enumerate(rows, start=1):
            figures[f"ttft_ms_turn{turn}_{mode}"] = median([v * 1000 for v in values])
    last = turns
    figures["ratio_ttft_last_turn_cached_vs_cold"] = (
        figures[f"ttft_ms_turn{last}_cached"] / figures[f"ttft_ms_turn{last}_cold"]
    )
    figures["ratio_ttft_last_turn_edge_kv_vs_cold"] = (
        figures[f"ttft_ms_turn{last}_edge_kv"] / figures[f"ttft_ms_turn{last}_cold"]
    )
    figures["edge_kv_restored_tokens"] = llms["edge_kv"].runner.kv_restored_tokens
    if turns >= 6:
        for mode in ("cached", "edge_kv"):
            figures[f"ratio_ttft_turn6_{mode}_vs_cold"] = (
                figures[f"ttft_ms_turn6_{mode}"] / figures["ttft_ms_turn6_cold"]
            )
    finish("multiturn", figures, args.json)


if __name__ == "__main__":
    main()
