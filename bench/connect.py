"""How long an edge waits for the cloud: cold connect and warm escalation, loopback.

- ``cold``: a new edge with ``--no-relay-first`` (signaling WebSocket, offer/answer through
  signaling, ICE, DTLS, SCTP) to the first token of a one-token stream over WebRTC;
- ``cold_relay_first``: a new edge as shipped (its first link is the encrypted relay
  through signaling, WebRTC comes up beside it) to the first token, on whichever path;
- ``bare_handshake`` (the cold baseline): aiortc alone, offer and answer handed over in
  this process, to an open channel (no signaling, no Tandem);
- ``warm``: one more one-token stream on the already linked pool, on the direct path
  (what every escalation after the first pays).

The worker is a real process with a bench-only backend (``bench/fast_worker.py``) so no
model time is in the figures. Targets: cold <= 150 ms p50, warm <= 2 ms.

    python -m bench.connect [--rounds 10] [--quick] [--json PATH]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import bench_args, finish, median, percentile, rounds_of
from bench.transport import LOOPBACK, Transport, edge_pool, one_stream, transport, until
from edge_agent.engines.remote import RemoteEngine
from edge_agent.peers import PeerPool
from link.base import PathKind
from link.rtc import accept_offer, create_offer


def on_direct(pool: PeerPool) -> bool:
    return pool.peer is not None and pool.peer.path is PathKind.DIRECT


async def cold(t: Transport, *, relay_first: bool = False) -> float:
    start = time.perf_counter()
    async with edge_pool(t, relay_first=relay_first) as pool:
        if relay_first:
            await until(lambda: pool.peer is not None, 60, "the pool linked")
        else:
            await until(lambda: on_direct(pool), 60, "the pool on the direct path")
        await one_stream(RemoteEngine(pool, model=""), 1)
        return time.perf_counter() - start


async def bare_handshake() -> float:
    start = time.perf_counter()
    offer = await create_offer((), LOOPBACK)
    answer = await accept_offer(offer.sdp, (), max_frame_bytes=16_384, policy=LOOPBACK)
    edge = await offer.complete(answer.sdp, timeout_s=20, max_frame_bytes=16_384)
    worker = await answer.wait_link(20)
    elapsed = time.perf_counter() - start
    await edge.aclose()
    await worker.aclose()
    return elapsed


async def run(rounds: int, warm_per_round: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {
        "cold": [],
        "cold_relay_first": [],
        "bare_handshake": [],
        "warm": [],
    }
    async with transport() as t:
        await cold(t)  # warm-up: imports, first DTLS certificate
        await bare_handshake()
        async with edge_pool(t) as pool:
            await until(lambda: on_direct(pool), 60, "the pool on the direct path")
            engine = RemoteEngine(pool, model="")
            for _ in range(rounds):
                times["cold"].append(await cold(t))
                times["cold_relay_first"].append(await cold(t, relay_first=True))
                times["bare_handshake"].append(await bare_handshake())
                for _ in range(warm_per_round):
                    times["warm"].append((await one_stream(engine, 1))[0])
    figures: dict[str, Any] = {}
    for key, values in times.items():
        ms = [v * 1000 for v in values]
        figures[f"{key}_ms_p50"] = median(ms)
        figures[f"{key}_ms_p99"] = percentile(ms, 99)
    figures["ratio_cold_vs_bare_handshake"] = (
        figures["cold_ms_p50"] / figures["bare_handshake_ms_p50"]
    )
    figures["ratio_warm_vs_cold"] = figures["warm_ms_p50"] / figures["cold_ms_p50"]
    return figures


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=10, quick_rounds=2)
    args = parser.parse_args()
    rounds = rounds_of(args)
    figures = {
        "baseline": "bare aiortc handshake in-process (cold); cold connect (warm)",
        "rounds": rounds,
        **asyncio.run(run(rounds, warm_per_round=5)),
    }
    finish("connect", figures, args.json)


if __name__ == "__main__":
    main()
