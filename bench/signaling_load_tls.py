"""``python -m bench.signaling_load --tls``: signaling's memory per idle ``wss://`` peer.

For each ``--tls-read-buffer-bytes`` size, ``signaling-server serve --tls-cert`` (a
certificate from a throwaway CA in a temporary directory) holds ``--peers`` idle light
peers; reported: its RSS per peer against ``ws://`` peers measured first in the same
run (the baseline). Memory only: brokering is the same code either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import tempfile
from pathlib import Path
from typing import Any

from bench.signaling_load import hold_idle_peers
from bench.signaling_server import start_server, stop_server
from signaling.settings import SignalingSettings
from tests.support.tls import CertAuthority

__all__ = ["report_tls", "run_tls"]


async def idle_rss(
    secret: str, args: argparse.Namespace, log: Path, extra: tuple[str, ...], ca_file: Path | None
) -> dict[str, Any]:
    """Signaling's RSS with no peer, then with ``--peers`` idle ones (after the connect
    burst and ``--idle-window-s`` of heartbeats)."""
    server = start_server(secret, args.heartbeat_s, log, extra, ca_file)
    try:
        rss0, holder, held = await hold_idle_peers(server, secret, args)
        assert holder.stdin is not None and holder.stdout is not None
        await asyncio.sleep(min(args.heartbeat_s, 5.0) + args.idle_window_s)
        rss1 = server.rss_kb()
        holder.stdin.close()
        alive = int(json.loads(await asyncio.to_thread(holder.stdout.readline) or b"{}")["alive"])
        holder.wait(60)
    finally:
        stop_server(server)
    per_peer_kb = (rss1 - rss0) / max(args.peers, 1)
    return {
        "peers_alive": alive,
        "connect_s": held["connect_s"],
        "rss_baseline_mb": round(rss0 / 1024, 1),
        "rss_with_peers_mb": round(rss1 / 1024, 1),
        "rss_per_peer_kb": round(per_peer_kb, 2),
        "rss_at_10k_peers_mb": round((rss0 + 10_000 * per_peer_kb) / 1024, 1),
    }


async def run_tls(args: argparse.Namespace) -> dict[str, Any]:
    """Idle peers over ws:// (the baseline), then over wss:// per read buffer size."""
    secret = secrets.token_urlsafe(32)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    variants: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-bench-tls-") as tmp:
            cert = CertAuthority.make(Path(tmp), "bench CA").issue(("127.0.0.1",))
            ca_file = Path(tmp) / "ca.pem"

            def log(name: str) -> Path:
                return Path(f"{args.log}.{name}") if args.log else Path(os.devnull)

            variants["ws"] = await idle_rss(secret, args, log("ws"), (), None)
            for nbytes in args.tls_read_buffer_bytes:
                tls: tuple[str, ...] = ("--tls-cert", str(cert.cert), "--tls-key", str(cert.key))
                tls += ("--tls-read-buffer-bytes", str(nbytes))
                name = f"wss_{nbytes}"
                variants[name] = await idle_rss(secret, args, log(name), tls, ca_file)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    base = variants["ws"]["rss_per_peer_kb"]
    for report in variants.values():
        report["ratio_to_ws"] = round(report["rss_per_peer_kb"] / base, 2) if base > 0 else None
    load = os.getloadavg()
    return {
        "peers": args.peers,
        "product_default_tls_read_buffer_bytes": SignalingSettings().tls_read_buffer_bytes,
        "variants": variants,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m": round(load[0], 2),
            "python": platform.python_version(),
        },
    }


def report_tls(report: dict[str, Any], json_path: Path | None) -> int:
    print(f"idle peers: {report['peers']} per variant (ws:// first: the baseline)")
    for name, v in report["variants"].items():
        print(
            f"  {name:>12}: {v['peers_alive']} alive, RSS {v['rss_baseline_mb']} -> "
            f"{v['rss_with_peers_mb']} MB: {v['rss_per_peer_kb']} KB/peer "
            f"(x{v['ratio_to_ws']} of ws), {v['rss_at_10k_peers_mb']} MB at 10k"
        )
    print(f"machine: {report['machine']['cpus']} CPUs, load {report['machine']['loadavg_1m']}")
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    return 0
