"""A real cloud worker whose backend emits tokens as fast as it is asked: the transport's
ceiling, with no model in the way. Bench-only (``bench.channel_capacity``, ``bench.connect``).

    python -m bench.fast_worker --signaling ws://127.0.0.1:P/v1/signal --port Q
    (the token in TANDEM_TOKEN, as for ``cloud-worker serve``)
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncGenerator

from aiohttp import web
from pydantic import SecretStr

from cloud_worker.app import create_app
from cloud_worker.backends import Backend
from cloud_worker.backends.base import BackendEvent
from cloud_worker.settings import WorkerSettings
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

MODEL = "fast"
TOKEN_TEXT = " tok"


class FastBackend(Backend):
    """``max_tokens`` one-token chunks, yielding to the loop every ``yield_every``."""

    def __init__(self, capacity: int, yield_every: int = 8) -> None:
        self._capacity = capacity
        self._active = 0
        self._yield_every = yield_every

    @property
    def models(self) -> tuple[str, ...]:
        return (MODEL,)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def active(self) -> int:
        return self._active

    @property
    def ready(self) -> bool:
        return True

    async def load(self) -> None:
        return None

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[BackendEvent, None]:
        n = request.params.max_tokens or 16
        rid = request.request_id
        self._active += 1
        try:
            for i in range(n):
                yield TokenChunk(request_id=rid, text=TOKEN_TEXT, n_tokens=1)
                if i % self._yield_every == 0:
                    await asyncio.sleep(0)
            yield StreamEnd(
                request_id=rid, finish_reason="length", prompt_tokens=1, completion_tokens=n
            )
        finally:
            self._active -= 1

    async def aclose(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signaling", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capacity", type=int, default=64)
    args = parser.parse_args()
    settings = WorkerSettings(
        signaling=args.signaling,
        token=SecretStr(os.environ["TANDEM_TOKEN"]),
        ice_host_addresses="127.0.0.1",
        port=args.port,
        max_streams_per_peer=args.capacity,
        log_level="WARNING",
    )
    app = create_app(settings, backend=FastBackend(args.capacity))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
