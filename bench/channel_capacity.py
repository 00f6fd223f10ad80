"""The transport's ceiling: tokens per second through one edge -> worker data channel
with 1, 16 and 64 concurrent streams, against the raw aiortc message rate on a channel
opened in the same run (the baseline: what aiortc alone moves, no Tandem framing,
sessions or back-pressure).

The worker is a real process with a bench-only backend that emits one-token chunks as
fast as the link takes them (``bench/fast_worker.py``); the edge's pool runs here. The
raw rate: ``--raw-messages`` 16-byte messages (a token frame's size) sent on a fresh
loopback channel pair, both ends in this process, counted on arrival, one per loop turn
(aiortc's fastest pattern). Target: >= 20,000 tokens/s at 64 streams.

``--compare-tree DIR`` also runs the fast worker from another checkout (its own signaling
and edge pool here, rounds interleaved): ``tokens_per_s_N_before`` and
``ratio_tokens_N_vs_before``, the worker's sending path before/after in the same run
(the edge's side is this tree's in both). ``ttft_ms_1``: the first token on an idle
channel, which coalescing must never delay.

    python -m bench.channel_capacity [--rounds 3] [--quick] [--json PATH] [--compare-tree DIR]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import bench_args, finish, median, rounds_of
from bench.transport import LOOPBACK, edge_pool, one_stream, transport, until
from edge_agent.engines.remote import RemoteEngine
from edge_agent.peers import PeerPool
from link import PathKind
from link.rtc import accept_offer, create_offer

CONCURRENCY = (1, 16, 64)


async def streams_rate(engine: RemoteEngine, n: int, tokens_each: int) -> float:
    """Tokens per second with ``n`` streams of ``tokens_each`` at once."""
    return (await streams_run(engine, n, tokens_each))[0]


async def streams_run(engine: RemoteEngine, n: int, tokens_each: int) -> tuple[float, float]:
    """(tokens per second, median seconds to the first token) with ``n`` streams."""
    start = time.perf_counter()
    results = await asyncio.gather(*(one_stream(engine, tokens_each) for _ in range(n)))
    elapsed = time.perf_counter() - start
    return sum(t for _, t in results) / elapsed, median([first for first, _ in results])


def linked(pool: PeerPool) -> bool:
    """On the data channel itself: the pool's first link is the relay through signaling
    (``relay_first``), upgraded to WebRTC in the background."""
    return pool.peer is not None and pool.peer.path is PathKind.DIRECT


async def raw_rate(messages: int, burst: int = 1) -> float:
    """Messages per second on a bare aiortc data channel pair over loopback, yielding to
    the loop after every ``burst`` messages.

    ``burst=1`` is the baseline: the pattern aiortc is fastest with. Sent in bursts, the
    messages are in flight together and aiortc's per-packet SACK handling walks its
    whole sent queue each time: 256 at a time measured 4-5x slower (the figure this
    benchmark reported before, kept as ``raw_messages_per_s_burst256``)."""
    offer = await create_offer((), LOOPBACK)
    answer = await accept_offer(offer.sdp, (), max_frame_bytes=16_384, policy=LOOPBACK)
    edge = await offer.complete(answer.sdp, timeout_s=20, max_frame_bytes=16_384)
    worker = await answer.wait_link(20)
    # The links' channels themselves: aiortc with nothing of Tandem's on top.
    send_channel: Any = worker._channel
    recv_channel: Any = edge._channel
    got = 0
    done = asyncio.Event()

    def on_message(_: bytes) -> None:
        nonlocal got
        got += 1
        if got == messages:
            done.set()

    recv_channel.remove_all_listeners("message")
    recv_channel.on("message", on_message)
    # Its own drain mark (the link sets 0 for its coalescing): wait only when far behind.
    send_channel.bufferedAmountLowThreshold = 64 * 1024
    low = asyncio.Event()
    send_channel.on("bufferedamountlow", low.set)
    payload = b"x" * 16
    start = time.perf_counter()
    for i in range(messages):
        send_channel.send(payload)
        if i % burst == 0:  # let aiortc's SCTP task drain, as a real sender would
            if send_channel.bufferedAmount > send_channel.bufferedAmountLowThreshold:
                low.clear()
                async with asyncio.timeout(60):
                    await low.wait()
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    await edge.aclose()
    await worker.aclose()
    return messages / elapsed


@asynccontextmanager
async def phase(what: str, timeout_s: float = 180) -> AsyncIterator[None]:
    """A phase that never hangs the benchmark: past ``timeout_s`` it fails, naming itself."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise RuntimeError(f"channel_capacity: {what}: not done in {timeout_s:.0f} s") from None


async def run(
    rounds: int, tokens_each: int, raw_messages: int, compare_tree: Path | None = None
) -> dict[str, Any]:
    variants: dict[str, Path | None] = {"": None}
    if compare_tree is not None:
        variants["_before"] = compare_tree
    rates: dict[str, list[float]] = {
        f"tokens_per_s_{n}{v}": [] for n in CONCURRENCY for v in variants
    }
    rates.update({f"ttft_ms_1{v}": [] for v in variants})  # on an idle channel
    rates["raw_messages_per_s"] = []
    rates["raw_messages_per_s_burst256"] = []
    async with AsyncExitStack() as stack:
        engines: dict[str, RemoteEngine] = {}
        pools: dict[str, PeerPool] = {}
        for v, tree in variants.items():
            t = await stack.enter_async_context(
                transport(capacity=max(CONCURRENCY), tree=tree, name=f"fast{v or '_after'}")
            )
            pool = pools[v] = await stack.enter_async_context(edge_pool(t))
            await until(partial(linked, pool), 60, f"the pool{v} on the data channel")
            engines[v] = RemoteEngine(pool, model="")
            await streams_rate(engines[v], 4, 64)  # warm-up
        for _ in range(rounds):
            for n in CONCURRENCY:
                for v, engine in engines.items():
                    async with phase(f"{n} streams{v}"):
                        rate, ttft = await streams_run(engine, n, tokens_each)
                        if not linked(pools[v]):
                            raise RuntimeError("channel_capacity: the link left the data channel")
                    rates[f"tokens_per_s_{n}{v}"].append(rate)
                    if n == 1:
                        rates[f"ttft_ms_1{v}"].append(ttft * 1000)
            async with phase("raw messages"):
                rates["raw_messages_per_s"].append(await raw_rate(raw_messages))
                rates["raw_messages_per_s_burst256"].append(await raw_rate(raw_messages, 256))
    figures: dict[str, Any] = {key: median(values) for key, values in rates.items()}
    for n in CONCURRENCY:
        figures[f"ratio_tokens_{n}_vs_raw_messages"] = (
            figures[f"tokens_per_s_{n}"] / figures["raw_messages_per_s"]
        )
        if compare_tree is not None:
            figures[f"ratio_tokens_{n}_vs_before"] = (
                figures[f"tokens_per_s_{n}"] / figures[f"tokens_per_s_{n}_before"]
            )
    return figures


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=3, quick_rounds=1)
    parser.add_argument("--tokens-per-stream", type=int, default=None, help="default 256")
    parser.add_argument("--raw-messages", type=int, default=None, help="default 5000")
    parser.add_argument("--compare-tree", type=Path, default=None)
    args = parser.parse_args()
    tokens = args.tokens_per_stream or (64 if args.quick else 256)
    raw = args.raw_messages or (2000 if args.quick else 5000)
    tree = args.compare_tree.resolve() if args.compare_tree else None
    figures = {
        "baseline": "raw aiortc messages/s on a loopback channel pair, one per loop turn, same run",
        "rounds": rounds_of(args),
        "tokens_per_stream": tokens,
        **asyncio.run(run(rounds_of(args), tokens, raw, tree)),
    }
    if args.compare_tree:
        figures["compare_tree"] = str(args.compare_tree)
    finish("channel_capacity", figures, args.json)


if __name__ == "__main__":
    main()
