"""Run inside a host namespace: one streamed chat completion against the edge there.

``python -m tests.netns.probe URL ROUTE`` prints one JSON line: status, the Tandem
headers, the number of content chunks, the text, time to first token and usage. Also
``--health URL`` prints the /healthz body, and ``--first`` is a client started with the
edge: it waits for the API to answer at all, then asks at once (what a user who starts
an app with the edge waits; no probe process starts in between). Stdlib only: it runs
with the test's Python inside ``ip netns exec``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def completion(
    url: str, route: str, max_tokens: int = 16, announce: bool = False
) -> dict[str, object]:
    """One streamed completion; with ``announce``, "first-token" on stderr when it comes
    (the test acts on the network while the stream is under way)."""
    body = {
        "model": "auto",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Name three rivers."}],
    }
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Tandem-Route": route},
    )
    start = time.monotonic()
    first: float | None = None
    first_at: float | None = None  # wall clock: compared with when the edge was started
    chunks: list[str] = []
    failovers: list[str] = []
    failover_at: list[float] = []  # wall clock of each failover note
    usage = None
    with urllib.request.urlopen(request, timeout=120) as resp:
        headers = {
            k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("x-tandem")
        }
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith(": x-tandem-failover"):
                failovers.append(line[2:])
                failover_at.append(time.time())
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            for choice in event.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    if first is None:
                        first = time.monotonic() - start
                        first_at = time.time()
                        if announce:
                            print("first-token", file=sys.stderr, flush=True)
                    chunks.append(text)
        status = resp.status
    return {
        "status": status,
        "headers": headers,
        "chunks": len(chunks),
        "text": "".join(chunks),
        "ttft_s": first,
        "first_token_at": first_at,
        "usage": usage,
        "failovers": failovers,
        "failover_at": failover_at,
    }


def health(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:  # 503 while the local model loads: cloud told too
        loading: dict[str, object] = json.loads(exc.read())
        return loading
    except (urllib.error.URLError, OSError) as exc:
        return {"error": str(exc)}


def first_answer(url: str, route: str, deadline_s: float = 90) -> dict[str, object]:
    """The completion a client gets that asks as soon as the API answers: polled every
    20 ms (connection refused until the edge listens), then asked at once, and asked
    again on a 503 (no cloud link yet, after the edge's own wait for one). Adds
    ``api_up_at`` (wall clock of the API's first answer) and ``refused`` (503s before)."""
    give_up = time.monotonic() + deadline_s
    while "error" in health(url):
        if time.monotonic() > give_up:
            raise TimeoutError(f"the API at {url} did not answer within {deadline_s} s")
        time.sleep(0.02)
    api_up_at = time.time()
    refused = 0
    while True:
        try:
            result = completion(url, route)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > give_up:
                raise
            refused += 1
            time.sleep(0.05)
            continue
        return {**result, "api_up_at": api_up_at, "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("route", nargs="?", default="cloud")
    parser.add_argument("--health", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--announce", action="store_true")
    parser.add_argument("--first", action="store_true")
    args = parser.parse_args()
    if args.health:
        result = health(args.url)
    elif args.first:
        result = first_answer(args.url, args.route)
    else:
        result = completion(args.url, args.route, args.max_tokens, args.announce)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
