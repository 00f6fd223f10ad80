"""How soon a freshly started edge answers an escalated request, loopback.

Each round spawns ``edge-agent serve`` (relay first, as shipped) against signaling in
this process and a fast worker that is already registered (``bench/fast_worker.py``: no
model time in the figures), and a client that polls ``/healthz`` every 10 ms from the
spawn on and, as soon as the API answers at all, asks for one streamed token with
``X-Tandem-Route: cloud`` (again on a 503: no cloud link yet). From the spawn:

- ``api``: the API's first answer (any status: it answers 503 while the model loads);
- ``first_token``: the escalated request's first token;
- ``local_ready``: ``/healthz`` 200, the local model loaded (systemd's READY).

Baseline, in the same rounds: ``bare_aiohttp``, a Python process that imports aiohttp
and serves a one-route app, to its first answer: the floor of any aiohttp server's
start on this machine. ``--compare-tree DIR`` also runs the edge from another checkout
(``*_before``), round by round with this one.

    python -m bench.edge_start [--rounds 8] [--quick] [--json PATH] [--compare-tree DIR]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import Proc, bench_args, finish, median, rounds_of, spawn
from bench.transport import Transport, transport
from devstack.stack import free_port
from shared.messages import Role

BARE_AIOHTTP = (
    "from aiohttp import web\n"
    "import sys\n"
    "app = web.Application()\n"
    "app.router.add_get('/healthz', lambda r: web.json_response({}))\n"
    "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)\n"
)


def _answers(url: str) -> int | None:
    """The HTTP status of ``url``, ``None`` while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def _until_answers(proc: Proc, url: str, deadline: float) -> int:
    while (status := _answers(url)) is None:
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} never answered: {proc.log.read_text()[-2000:]}")
        time.sleep(0.01)
    return status


def _first_token(base: str, deadline: float) -> str:
    """Ask for one streamed token from the cloud until served; the path it came over."""
    body = json.dumps(
        {
            "model": "auto",
            "stream": True,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "x"}],
        }
    ).encode()
    while True:
        request = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json", "X-Tandem-Route": "cloud"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                for line in resp:
                    if line.startswith(b"data: {") and b'"content"' in line:
                        return str(resp.headers.get("X-Tandem-Path"))
            raise RuntimeError("the stream ended without a token")
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def edge_round(t: Transport, logs: Path, tree: Path | None, n: str) -> dict[str, float]:
    """Seconds from spawning an edge to: its API answering, the first escalated token,
    its local model loaded."""
    port = free_port()
    argv = [
        sys.executable, "-m", "edge_agent", "serve", "--port", str(port),
        "--signaling", t.signaling_url, "--insecure-no-api-key", "--log-level", "WARNING",
        "--ice-host-addresses", "127.0.0.1", "--address-poll-s", "0",
    ]  # fmt: skip
    env = {"TANDEM_TOKEN": t.token(Role.EDGE, f"edge-{n}")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    start = time.monotonic()
    proc = spawn(f"edge-{n}", argv, logs, port, env=env, cwd=tree)
    deadline = start + 120
    try:
        _until_answers(proc, f"{proc.url}/healthz", deadline)
        api = time.monotonic() - start
        _first_token(proc.url, deadline)
        first = time.monotonic() - start
        while _until_answers(proc, f"{proc.url}/healthz", deadline) != 200:
            time.sleep(0.01)
        ready = time.monotonic() - start
    finally:
        proc.stop()
    return {"api": api, "first_token": first, "local_ready": ready}


def bare_round(logs: Path, n: int) -> float:
    port = free_port()
    start = time.monotonic()
    proc = spawn(f"bare-{n}", [sys.executable, "-c", BARE_AIOHTTP, str(port)], logs, port)
    try:
        _until_answers(proc, f"{proc.url}/healthz", start + 60)
        return time.monotonic() - start
    finally:
        proc.stop()


async def run(rounds: int, before: Path | None) -> dict[str, Any]:
    times: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        async with transport() as t:
            # Warm-up (not counted): the page cache holds the model and the bytecode.
            await asyncio.to_thread(edge_round, t, logs, None, "warm-up")
            for n in range(rounds):
                add("bare_aiohttp", await asyncio.to_thread(bare_round, logs, n))
                variants = [(None, "")] + ([(before, "_before")] if before is not None else [])
                for tree, suffix in variants:
                    got = await asyncio.to_thread(edge_round, t, logs, tree, f"{n}{suffix}")
                    for key, seconds in got.items():
                        add(key + suffix, seconds)
    figures: dict[str, Any] = {f"{k}_ms_p50": median(v) for k, v in times.items()}
    figures["ratio_first_token_vs_bare_aiohttp"] = (
        figures["first_token_ms_p50"] / figures["bare_aiohttp_ms_p50"]
    )
    figures["ratio_api_vs_bare_aiohttp"] = figures["api_ms_p50"] / figures["bare_aiohttp_ms_p50"]
    if before is not None:
        figures["ratio_first_token_vs_before"] = (
            figures["first_token_ms_p50"] / figures["first_token_before_ms_p50"]
        )
    return figures


def main() -> None:
    parser = bench_args(__doc__ or "", rounds=8, quick_rounds=2)
    parser.add_argument("--compare-tree", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    rounds = rounds_of(args)
    before = args.compare_tree.resolve() if args.compare_tree is not None else None
    figures = {
        "baseline": "a bare aiohttp server process, to its first answer",
        "rounds": rounds,
        **asyncio.run(run(rounds, before)),
    }
    finish("edge_start", figures, args.json)


if __name__ == "__main__":
    main()
