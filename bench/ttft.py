"""Time to first token: escalated (edge -> WebRTC -> worker) against local, same run.

Starts the real stack on loopback (bundled model on both sides), then alternates local
and cloud streaming requests for the same prompt and prints medians and the ratio
cloud/local. Machines here are shared and noisy: read the ratio, not the seconds.

    .venv/bin/python bench/ttft.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from devstack.stack import Stack, StackConfig, free_port

PROMPT = "Give me one tip for staying focused."


def ttft(edge_url: str, route: str, n: int) -> tuple[float, float]:
    """(seconds to the first content chunk, seconds to [DONE]) for one streamed request."""
    body = json.dumps(
        {
            "model": "auto",
            "stream": True,
            "max_tokens": 16,
            "temperature": 0,
            # A distinct prompt per run: llama.cpp reuses a cached prefix, which would
            # hide the prompt's processing time.
            "messages": [{"role": "user", "content": f"{PROMPT} (question {n})"}],
        }
    ).encode()
    request = urllib.request.Request(
        f"{edge_url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", "X-Tandem-Route": route},
    )
    start = time.perf_counter()
    first = None
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert resp.headers["X-Tandem-Served-By"] == ("cloud" if route == "cloud" else "local")
        for line in resp:
            if (
                first is None
                and line.startswith(b"data: {")
                and b'"content":"' in line.replace(b" ", b"")
            ):
                first = time.perf_counter() - start
            if line.strip() == b"data: [DONE]":
                break
    total = time.perf_counter() - start
    return (first if first is not None else total), total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        config = StackConfig(
            signaling_port=free_port(),
            worker_port=free_port(),
            edge_port=free_port(),
            log_dir=Path(logs),
        )
        with Stack(config) as stack:
            for route in ("local", "cloud"):  # warm both models once, not measured
                ttft(stack.edge_url, route, -1)
            results: dict[str, list[tuple[float, float]]] = {"local": [], "cloud": []}
            for n in range(args.runs):
                for route in ("local", "cloud"):
                    results[route].append(ttft(stack.edge_url, route, n))
    med = {r: statistics.median(t for t, _ in v) for r, v in results.items()}
    tot = {r: statistics.median(t for _, t in v) for r, v in results.items()}
    print(f"runs per route: {args.runs}, prompt: {PROMPT!r}, max_tokens 16, loopback")
    for r in ("local", "cloud"):
        print(f"{r:6} TTFT median {med[r] * 1000:7.1f} ms   full stream {tot[r] * 1000:7.1f} ms")
    print(
        "ratio cloud/local (baseline: local engine, same run): "
        f"TTFT {med['cloud'] / med['local']:.2f}x, full stream {tot['cloud'] / tot['local']:.2f}x"
    )


if __name__ == "__main__":
    main()
