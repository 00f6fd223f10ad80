"""What the router's second look costs, against a plain local answer, same run.

The second look (``edge_agent.router.second``) reads the prompt state the local
prefill computes anyway. Two costs follow, both measured here on the bundled model in
the edge's own runner, interleaved round by round:

- kept local: time to the first token with the look (``ttft_ms_look``, read as the
  edge reads it: by the tap where it is built) against the
  same prompt answered with no look (``ttft_ms_plain``, the baseline), and their paired
  difference (``added_ttft_ms``): the tap reads one row during the prefill (without
  it, the look splits the prefill into two decodes) and scores the head (576 wide per
  block it reads);
- escalated: the delay before the request leaves for the cloud, one prefill
  (``prefill_ms``), against the same baseline;
- the look's own work for a 500-token prompt, the issue's yardstick, two ways. As the
  runner reads the state where the C tap is built (``look_ms_500``): the prefill's
  last batch (its last ``TAIL`` tokens) evaluated with the tap armed, plus the head,
  less the same batch evaluated plainly, back to back in alternating order (paired;
  each the best of ``REPEATS`` runs, as is the baseline).
  As it reads it without the tap, the baseline (``look_ms_500_decode``): the prompt's
  last token decoded on its own with hidden states on, plus the head (that way reads
  only the final state, whatever the head's tensors, so it is scored by the head's
  first 576 weights: a timing, not a decision). Paired
  TTFT differences of seconds-long prefills are too noisy on a shared machine to give
  a p99 of a few milliseconds, hence these.
  Both are also read as the calling thread's CPU time (``look_cpu_ms_500``,
  ``look_cpu_ms_500_decode``): with one thread llama.cpp computes in the caller, so
  that clock leaves out the time other tenants of a shared host hold the core, which
  is most of the wall clock's p99 here.

Prompts are the dev set's that may take a look (``--limit`` of them, within the
default ``--router-second-look-max-prompt-tokens``), each made distinct per variant and
round by a first system line, so that no variant reuses another's cached prefix.
Pin it to one core for the edge's budget: ``taskset -c 0 python -m bench.second_look``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.common import bench_args, finish, median, model_or_exit, percentile, rounds_of
from edge_agent.router import RouterConfig, extract_features
from edge_agent.router.second import SecondLook, load_prompt_head
from inference import LlamaRunner
from inference.prompt_state import prefill_state
from inference.state_tap import FINAL_STATE, StateTap
from router_lab.dataset import read_dataset
from router_lab.embed import PROMPT_N_CTX, prompt_runner
from shared.messages import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

DEV = Path(__file__).resolve().parent.parent / "data" / "router_dev.jsonl"


def _variant(request: GenerateRequest, tag: str) -> GenerateRequest:
    assert request.messages is not None
    first = ChatMessage(role="system", content=f"Session {tag}.")
    return request.model_copy(
        update={
            "request_id": tag,
            "messages": (first, *request.messages),
            "params": SamplingParams(max_tokens=1, temperature=0),
        }
    )


async def _ttft(runner: LlamaRunner, request: GenerateRequest, look: SecondLook | None) -> float:
    # Scored as the edge scores it, and always kept: this is the cost of a look that keeps.
    check = None if look is None else (lambda state: look.score(state) <= 1.0)
    start = time.perf_counter()
    async for event in runner.stream(request, check=check):
        if isinstance(event, TokenChunk) and event.n_tokens:
            break
    return (time.perf_counter() - start) * 1000


TAIL = 1
"""Tokens of the 500 a tapped or plain prefill evaluates in the timed batch. The tap
copies one row whatever the batch's size, so the smallest batch measures the same work
with the least of the batch's own noise around it (8 tokens until round 14: a p99 of
tens of ms that was the batch's jitter, not the tap)."""
REPEATS = 5
"""Runs of each timed step per round, of which the fastest counts."""


@dataclass
class LookWork:
    """The look's own work on a 500-token prompt, per round, in ms: each way (see the
    module) on the wall clock and on the calling thread's CPU clock."""

    decoded: list[float] = field(default_factory=list)
    tapped: list[float] = field(default_factory=list)
    decoded_cpu: list[float] = field(default_factory=list)
    tapped_cpu: list[float] = field(default_factory=list)


def look_ms_500(path: Path, look: SecondLook, rounds: int) -> LookWork:
    """The look's own work on a 500-token prompt, ``rounds`` times, both ways (see the
    module): the extra decode, and what the tap adds to the prefill's last batch."""
    import llama_cpp

    def load() -> llama_cpp.Llama:
        return llama_cpp.Llama(model_path=str(path), n_ctx=PROMPT_N_CTX, n_threads=1, verbose=False)

    plain, tapped = load(), load()
    # the decode reads the final state alone: round 8's look, one state wide
    final_head = replace(look.head, weights=look.head.weights[: plain.n_embd()], tensor=FINAL_STATE)
    decoded_look = replace(look, head=final_head)
    try:
        tap = StateTap(tapped, look.head.tensor)
        text = " ".join(str(i.request.messages) for i in read_dataset(DEV)[:40])
        tokens = plain.tokenize(text.encode("utf-8"), add_bos=True)[:500]
        for llm in (plain, tapped):
            llm.eval(tokens)  # the first 492 stay in the context from here on

        def timed(work: Callable[[], object]) -> tuple[float, float]:
            """The best of ``REPEATS`` runs in ms, wall and thread CPU: a shared machine
            only ever adds time."""
            wall = cpu = math.inf
            for _ in range(REPEATS):
                start, start_cpu = time.perf_counter(), time.thread_time()
                work()
                cpu = min(cpu, time.thread_time() - start_cpu)
                wall = min(wall, time.perf_counter() - start)
            return wall * 1000, cpu * 1000

        def decode_look() -> None:
            plain.n_tokens = len(tokens)  # the last token is re-decoded alone
            decoded_look.score(prefill_state(plain, tokens))

        def plain_batch() -> None:
            plain.n_tokens = len(tokens) - TAIL
            plain.eval(tokens[-TAIL:])  # the prefill's last batch, no look

        def tapped_batch() -> None:
            tapped.n_tokens = len(tokens) - TAIL
            look.score(prefill_state(tapped, tokens, tap))  # the same batch, tapped

        work = LookWork()
        for n in range(rounds):
            wall, cpu = timed(decode_look)
            work.decoded.append(wall)
            work.decoded_cpu.append(cpu)
            if n % 2:
                base, with_tap = timed(plain_batch), timed(tapped_batch)
            else:
                with_tap, base = timed(tapped_batch), timed(plain_batch)
            work.tapped.append(with_tap[0] - base[0])
            work.tapped_cpu.append(with_tap[1] - base[1])
        return work
    finally:
        plain.close()
        tapped.close()


async def run(rounds: int, limit: int) -> dict[str, float]:
    path = model_or_exit()
    head = load_prompt_head(path)
    if head is None:
        raise SystemExit("no prompt head for the bundled model")
    look = SecondLook(head, features_log_odds=0.0, token_log_odds=0.0)
    limit_tokens = RouterConfig().second_look_max_prompt_tokens
    items = [
        i
        for i in read_dataset(DEV)
        if i.request.messages is not None
        and extract_features(i.request).prompt_tokens <= limit_tokens
    ][:limit]
    runner = prompt_runner()
    await runner.load()
    if not runner.read_state_from(head.tensor):
        raise SystemExit(f"the prompt head reads {head.tensor}, which needs inference._tap")
    plain: list[float] = []
    looked: list[float] = []
    prefill: list[float] = []
    try:
        for n in range(rounds):
            for k, item in enumerate(items):
                tag = f"{n}-{k}"
                plain.append(await _ttft(runner, _variant(item.request, f"p{tag}"), None))
                looked.append(await _ttft(runner, _variant(item.request, f"l{tag}"), look))
                start = time.perf_counter()
                await runner.prompt_state(_variant(item.request, f"s{tag}"))
                prefill.append((time.perf_counter() - start) * 1000)
        added = [b - a for a, b in zip(plain, looked, strict=True)]  # the same prompt, paired
        state = np.ones(head.weights.shape, dtype=np.float32)
        start = time.perf_counter()
        for _ in range(1000):
            look.score(state)
        score_us = (time.perf_counter() - start) * 1000
    finally:
        await runner.aclose()
    work = look_ms_500(path, look, 20 * rounds)
    return {
        "prompts": len(items),
        "rounds": rounds,
        "ttft_ms_plain_p50": median(plain),
        "ttft_ms_plain_p99": percentile(plain, 99),
        "ttft_ms_look_p50": median(looked),
        "ttft_ms_look_p99": percentile(looked, 99),
        "prefill_ms_p50": median(prefill),
        "prefill_ms_p99": percentile(prefill, 99),
        "added_ttft_ms_p50": median(added),
        "added_ttft_ms_p99": percentile(added, 99),
        "look_score_us": score_us,
        "look_ms_500_p50": median(work.tapped),
        "look_ms_500_p99": percentile(work.tapped, 99),
        "look_ms_500_decode_p50": median(work.decoded),
        "look_ms_500_decode_p99": percentile(work.decoded, 99),
        "look_cpu_ms_500_p50": median(work.tapped_cpu),
        "look_cpu_ms_500_p99": percentile(work.tapped_cpu, 99),
        "look_cpu_ms_500_decode_p50": median(work.decoded_cpu),
        "look_cpu_ms_500_decode_p99": percentile(work.decoded_cpu, 99),
        "ratio_ttft_look_vs_plain": median(looked) / median(plain),
        "ratio_prefill_vs_plain_ttft": median(prefill) / median(plain),
    }


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=3, quick_rounds=1)
    parser.add_argument("--limit", type=int, default=40, help="dev-set prompts per round")
    args = parser.parse_args()
    limit = 3 if args.quick else args.limit
    finish("second_look", asyncio.run(run(rounds_of(args), limit)), args.json)


if __name__ == "__main__":
    main()
