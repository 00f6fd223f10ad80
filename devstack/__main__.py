"""``python -m devstack``: the quickstart. Signaling, a worker and an edge on loopback,
each with the bundled SmolLM2-135M-Instruct model, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from devstack.stack import Stack, StackConfig, StackError

USAGE = """
Tandem is up: edge {edge} (local + cloud), signaling {sig}, worker health {worker}.

  curl {edge}/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Say hello"}}]}}'

  # force the cloud worker, stream tokens as they come:
  curl -N {edge}/v1/chat/completions -H 'Content-Type: application/json' -H 'X-Tandem-Route: cloud' \\
    -d '{{"model": "auto", "stream": true, "messages": [{{"role": "user", "content": "Count to five"}}]}}'

  python -c "from openai import OpenAI; c = OpenAI(base_url='{edge}/v1', api_key='unused'); \\
print(c.chat.completions.create(model='edge', messages=[{{'role': 'user', 'content': 'Hi'}}]).choices[0].message.content)"

Ctrl-C stops all three.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--edge-port", type=int, default=int(os.environ.get("TANDEM_EDGE_PORT", 8080))
    )
    parser.add_argument(
        "--signaling-port", type=int, default=int(os.environ.get("TANDEM_SIGNALING_PORT", 8765))
    )
    parser.add_argument(
        "--worker-port", type=int, default=int(os.environ.get("TANDEM_WORKER_PORT", 8766))
    )
    args = parser.parse_args(argv)
    stack = Stack(
        StackConfig(
            edge_port=args.edge_port,
            signaling_port=args.signaling_port,
            worker_port=args.worker_port,
        )
    )
    # Ctrl-C reaches the children too (same process group); we only wait for them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start()
        print(
            USAGE.format(
                edge=stack.edge_url, sig=stack.signaling_url, worker=stack.worker_health_url
            ),
            flush=True,
        )
        while all(p.poll() is None for p in stack.procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in stack.procs.items() if p.poll() is not None]
        print(f"devstack: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndevstack: stopping", file=sys.stderr)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
