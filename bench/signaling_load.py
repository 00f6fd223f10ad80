"""How far one signaling process goes: idle peers held, and offer→answer brokering.

Starts ``signaling-server serve`` in a subprocess (its own process, so that its RSS and
CPU are its own: ``bench.signaling_server``), then:

1. **Idle peers.** ``--peers`` light WebSocket clients (a few KB each, raw asyncio
   protocols: no aiohttp session per peer) authenticate with tokens minted by
   signaling's own token code, get their ``Welcome`` and then only heartbeat: each
   client pings every ``--client-ping-s``, and the server pings a peer it has not heard
   from for ``--heartbeat-s`` (the real peers' defaults: 15 s and 20 s, so the server
   never needs to; a ``--client-ping-s`` above ``--heartbeat-s`` measures the server
   pinging every peer instead). Reported: the server's RSS against its
   own RSS with no peer (the baseline, same run), per peer; and its CPU, in % of one
   core, over ``--idle-window-s`` of heartbeats only.
2. **Brokering.** With the idle peers still connected, ``--workers`` simulated workers
   register and answer every offer at once, and ``--edges`` edges send offers at
   ``--offer-rate`` per second in total for ``--duration-s``. Reported: offer→answer
   latency p50/p99, against the WebSocket ping→pong round trip to the same server
   measured beside it (the baseline: what any message costs, brokering aside).

``--tls`` measures idle peers only, over ``wss://`` (a certificate from a throwaway CA in
a temporary directory): signaling's RSS per idle peer for each ``--tls-read-buffer-bytes``
(default: the product's default and asyncio's own, 256 KiB), against plain ``ws://``
peers measured first in the same run (the baseline); the code is in ``bench.signaling_load_tls``.

The machine this runs on is usually shared: read the ratios and the per-peer figures;
the CPU % and latencies move with whatever else runs. ``--quick`` runs a small version
(for tests). ``--json PATH`` writes every figure.

    python -m bench.signaling_load --peers 10000 --offer-rate 500 --json out.json
    python -m bench.signaling_load --tls --peers 10000 --tls-read-buffer-bytes 16384,32768,262144

The light peers are in ``bench.light_peers``, the server's process in
``bench.signaling_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import percentile
from bench.light_peers import client_pings, connect_idle, light_tls_context
from bench.signaling_server import Server, start_server, stop_server
from shared.codec import decode, encode
from shared.messages import Answer, Offer, Register, Role, SignalError, Welcome
from shared.tokens import mint_token
from signaling.settings import SignalingSettings

TARGETS = {"rss_mb_at_10k": 200.0, "idle_cpu_percent": 5.0, "offers_per_s": 500, "p99_ms": 50.0}
SDP = "v=0\r\n" + "a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host\r\n" * 20


@dataclass
class Brokering:
    sent: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0
    expected: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def settled(self) -> None:
        if len(self.latencies_ms) + self.refused >= self.expected:
            self.all_in.set()


async def broker_offers(
    server: Server, secret: str, *, workers: int, edges: int, rate: float, duration_s: float
) -> tuple[Brokering, list[float]]:
    """Offer→answer latencies at ``rate``/s, and ping round trips measured beside them."""
    now = time.time()
    result = Brokering()

    def token(role: Role, peer_id: str) -> dict[str, str]:
        value = mint_token(secret, role=role, peer_id=peer_id, ttl_s=3600, now=now)
        return {"Authorization": f"Bearer {value}"}

    async with aiohttp.ClientSession() as http:
        worker_ws = [
            await http.ws_connect(server.ws_url, headers=token(Role.WORKER, f"load-w{i}"))
            for i in range(workers)
        ]
        edge_ws = [
            await http.ws_connect(server.ws_url, headers=token(Role.EDGE, f"load-e{i}"))
            for i in range(edges)
        ]
        for ws in [*worker_ws, *edge_ws]:
            assert isinstance(decode((await ws.receive()).data), Welcome)
        for ws in worker_ws:
            await ws.send_bytes(encode(Register(models=("m",), capacity=1_000_000)))

        async def answer(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for raw in ws:
                message = decode(raw.data, max_frame_bytes=1 << 20)
                if isinstance(message, Offer):
                    await ws.send_bytes(encode(Answer(session_id=message.session_id, sdp="v=0")))

        async def collect(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for raw in ws:
                message = decode(raw.data, max_frame_bytes=1 << 20)
                sent = result.sent.pop(getattr(message, "session_id", "") or "", None)
                if isinstance(message, Answer) and sent is not None:
                    result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                elif isinstance(message, SignalError):
                    result.refused += 1
                result.settled()

        rtts: list[float] = []
        probe = await http.ws_connect(
            server.ws_url, headers=token(Role.EDGE, "load-probe"), autoping=False
        )
        await probe.receive()

        async def ping_rtts() -> None:
            while True:
                start = time.perf_counter()
                await probe.ping()
                while True:
                    frame = await probe.receive()
                    if frame.type is aiohttp.WSMsgType.PING:  # the server's heartbeat
                        await probe.pong(frame.data)
                    elif frame.type is aiohttp.WSMsgType.PONG:
                        break
                rtts.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.05)

        readers = [asyncio.create_task(answer(ws)) for ws in worker_ws]
        readers += [asyncio.create_task(collect(ws)) for ws in edge_ws]
        await asyncio.sleep(0.5)  # registrations in
        pinger = asyncio.create_task(ping_rtts())
        total = int(rate * duration_s)
        result.expected = total
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            session_id = f"s{i}-{secrets.token_hex(4)}"
            result.sent[session_id] = time.perf_counter()
            await edge_ws[i % edges].send_bytes(
                encode(Offer(session_id=session_id, sdp=SDP, model="m"))
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(result.all_in.wait(), 10)  # stragglers: counted as lost
        for task in [*readers, pinger]:
            task.cancel()
        await asyncio.gather(*readers, pinger, return_exceptions=True)
        for ws in [*worker_ws, *edge_ws, probe]:
            await ws.close()
    return result, rtts


def spawn_holder(server: Server, secret: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """The process holding the idle peers (``--hold-idle``); the secret goes by env."""
    argv = [sys.executable, "-m", "bench.signaling_load", "--hold-idle", str(server.port)]
    argv += ["--peers", str(args.peers), "--client-ping-s", str(args.client_ping_s)]
    argv += ["--concurrency", str(args.concurrency)]
    if server.ca_file is not None:
        argv += ["--hold-ca", str(server.ca_file)]
    return subprocess.Popen(
        argv,
        env={**os.environ, "BENCH_SECRET": secret},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


async def hold_idle_peers(
    server: Server, secret: str, args: argparse.Namespace
) -> tuple[int, subprocess.Popen[bytes], dict[str, Any]]:
    """The server's RSS (KB) before any peer, then ``--peers`` idle peers connected: the
    baseline, their holder process, and what it reported (``connect_s``). The peers live
    in their own process, so that their pings never delay the measuring clients here."""
    await asyncio.sleep(1.0)  # let start-up settle before the baseline
    rss0 = server.rss_kb()
    holder = spawn_holder(server, secret, args)
    assert holder.stdout is not None
    held = json.loads(await asyncio.to_thread(holder.stdout.readline) or b"{}")
    if "connect_s" not in held:
        raise RuntimeError("the idle peers' process failed")
    return rss0, holder, held


async def run(args: argparse.Namespace) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    log = Path(args.log or os.devnull)
    server = start_server(secret, args.heartbeat_s, log)
    try:
        rss0, holder, held = await hold_idle_peers(server, secret, args)
        assert holder.stdin is not None and holder.stdout is not None
        connect_s = held["connect_s"]
        await asyncio.sleep(min(args.heartbeat_s, 5.0))  # past the connect burst
        cpu0, w0 = server.cpu_s(), time.perf_counter()
        await asyncio.sleep(args.idle_window_s)
        idle_cpu = 100 * (server.cpu_s() - cpu0) / (time.perf_counter() - w0)
        rss1 = server.rss_kb()
        brokering, rtts = await broker_offers(
            server,
            secret,
            workers=args.workers,
            edges=args.edges,
            rate=args.offer_rate,
            duration_s=args.duration_s,
        )
        holder.stdin.close()  # the holder reports who is still connected, and exits
        alive = int(json.loads(await asyncio.to_thread(holder.stdout.readline) or b"{}")["alive"])
        holder.wait(60)
    finally:
        stop_server(server)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    per_peer_kb = (rss1 - rss0) / max(args.peers, 1)
    p50, p99 = percentile(brokering.latencies_ms, 50), percentile(brokering.latencies_ms, 99)
    rtt50 = statistics.median(rtts) if rtts else float("nan")
    load = os.getloadavg()
    return {
        "peers": args.peers,
        "peers_alive_after_idle": alive,
        "connect_s": round(connect_s, 2),
        "heartbeat_s": args.heartbeat_s,
        "client_ping_s": args.client_ping_s,
        "rss_baseline_mb": round(rss0 / 1024, 1),
        "rss_with_peers_mb": round(rss1 / 1024, 1),
        "rss_per_peer_kb": round(per_peer_kb, 2),
        "rss_at_10k_peers_mb": round((rss0 + 10_000 * per_peer_kb) / 1024, 1),
        "idle_cpu_percent": round(idle_cpu, 2),
        "idle_window_s": args.idle_window_s,
        "offer_rate": args.offer_rate,
        "offers_sent": int(args.offer_rate * args.duration_s),
        "offers_answered": len(brokering.latencies_ms),
        "offers_refused": brokering.refused,
        "latency_ms": {"p50": round(p50, 2), "p99": round(p99, 2)},
        "ping_rtt_ms_p50": round(rtt50, 2),
        "ratio_p50_to_ping": round(p50 / rtt50, 2) if rtts else None,
        "targets": TARGETS,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m": round(load[0], 2),
            "python": platform.python_version(),
            "note": "shared machine: CPU and latency figures include other tenants' load",
        },
    }


async def hold_idle(
    port: int, n: int, ping_s: float, concurrency: int, ca_file: Path | None
) -> None:
    """The idle peers' process: connect, report, ping until stdin closes, report."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context = light_tls_context(ca_file) if ca_file is not None else None
    t0 = time.perf_counter()
    peers = await connect_idle(port, os.environ["BENCH_SECRET"], n, concurrency, context)
    print(json.dumps({"connect_s": round(time.perf_counter() - t0, 2)}), flush=True)
    pinger = asyncio.create_task(client_pings(peers, ping_s))
    await asyncio.to_thread(sys.stdin.read)
    print(json.dumps({"alive": sum(1 for p in peers if not p.closed)}), flush=True)
    pinger.cancel()
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.signaling_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--peers", type=int, default=10_000, help="idle peers")
    parser.add_argument("--offer-rate", type=float, default=500.0, help="offers per second")
    parser.add_argument("--duration-s", type=float, default=10.0, help="offering time")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--edges", type=int, default=50)
    parser.add_argument(
        "--heartbeat-s", type=float, default=20.0, help="server pings a peer silent this long"
    )
    parser.add_argument("--client-ping-s", type=float, default=15.0, help="peer ping interval")
    parser.add_argument("--idle-window-s", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=200, help="connects in flight")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    parser.add_argument("--log", default=None, help="signaling's log file")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (tests)")
    parser.add_argument(
        "--tls", action="store_true", help="idle peers over wss:// vs ws:// (memory only)"
    )
    parser.add_argument(
        "--tls-read-buffer-bytes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[SignalingSettings().tls_read_buffer_bytes, 256 * 1024],
        metavar="N[,N...]",
        help="with --tls: signaling's --tls-read-buffer-bytes to measure "
        "[default: the product's default, and asyncio's 262144]",
    )
    parser.add_argument("--hold-idle", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hold-ca", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hold_idle is not None:
        asyncio.run(
            hold_idle(
                args.hold_idle, args.peers, args.client_ping_s, args.concurrency, args.hold_ca
            )
        )
        return 0
    if args.quick:
        args.peers, args.offer_rate, args.duration_s = min(args.peers, 200), 50.0, 1.0
        args.heartbeat_s, args.client_ping_s, args.idle_window_s = 2.0, 1.5, 1.0
        args.workers, args.edges = 2, 4
    if args.tls:
        from bench.signaling_load_tls import report_tls, run_tls  # it imports this module

        return report_tls(asyncio.run(run_tls(args)), args.json)
    report = asyncio.run(run(args))
    print(
        f"idle peers: {report['peers']} ({report['peers_alive_after_idle']} alive), "
        f"RSS {report['rss_baseline_mb']} MB with none (baseline) -> "
        f"{report['rss_with_peers_mb']} MB: {report['rss_per_peer_kb']} KB/peer, "
        f"{report['rss_at_10k_peers_mb']} MB at 10k (target < 200)\n"
        f"idle CPU (heartbeats only): {report['idle_cpu_percent']} % of a core "
        f"(target < 5)\n"
        f"offer->answer at {report['offer_rate']:g}/s: {report['offers_answered']}/"
        f"{report['offers_sent']} answered, p50 {report['latency_ms']['p50']} ms, "
        f"p99 {report['latency_ms']['p99']} ms (target < 50); WebSocket ping p50 "
        f"{report['ping_rtt_ms_p50']} ms (baseline): ratio {report['ratio_p50_to_ping']}\n"
        f"machine: {report['machine']['cpus']} CPUs, load {report['machine']['loadavg_1m']} "
        "(shared: read ratios, not seconds)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
