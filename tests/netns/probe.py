"""Run inside a host namespace: one streamed chat completion against the edge there.

``python -m tests.netns.probe URL ROUTE`` prints one JSON line: status, the Tandem
headers, the number of content chunks, the text, time to first token and usage. Also
``--health URL`` prints the /healthz body. Stdlib only: it runs with the test's Python
inside ``ip netns exec``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def completion(url: str, route: str) -> dict[str, object]:
    body = {
        "model": "auto",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 16,
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
    chunks: list[str] = []
    usage = None
    with urllib.request.urlopen(request, timeout=120) as resp:
        headers = {
            k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("x-tandem")
        }
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            for choice in event.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    first = first if first is not None else time.monotonic() - start
                    chunks.append(text)
        status = resp.status
    return {
        "status": status,
        "headers": headers,
        "chunks": len(chunks),
        "text": "".join(chunks),
        "ttft_s": first,
        "usage": usage,
    }


def health(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body
    except (urllib.error.URLError, OSError) as exc:
        return {"error": str(exc)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("route", nargs="?", default="cloud")
    parser.add_argument("--health", action="store_true")
    args = parser.parse_args()
    result = health(args.url) if args.health else completion(args.url, args.route)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
