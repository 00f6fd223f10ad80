"""``LlamaBackend``: ``parallel`` llama.cpp instances of one GGUF, each on its own thread.

A llama context generates one stream at a time, so concurrency means instances. A
request takes an idle instance or waits (at most ``max_queue`` waiters; beyond that the
request is refused as overloaded so that the edge can try elsewhere at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from cloud_worker.backends.base import Backend, BackendEvent
from cloud_worker.errors import BackendUnavailable
from inference import LlamaRunner, RunnerConfig
from shared.messages import GenerateRequest

__all__ = ["LlamaBackend"]


class LlamaBackend(Backend):
    """Serves one model from a pool of identical llama.cpp instances."""

    def __init__(
        self, config: RunnerConfig, *, parallel: int, max_queue: int, served_name: str | None = None
    ) -> None:
        self._runners = [LlamaRunner(config) for _ in range(parallel)]
        self._idle: asyncio.Queue[LlamaRunner] = asyncio.Queue(maxsize=parallel)  # the pool
        self._max_queue = max_queue
        self._waiting = 0
        self._name = served_name or self._runners[0].name

    @property
    def models(self) -> tuple[str, ...]:
        return (self._name,)

    @property
    def runners(self) -> tuple[LlamaRunner, ...]:
        """The model instances, one per ``parallel``."""
        return tuple(self._runners)

    @property
    def capacity(self) -> int:
        return len(self._runners)

    @property
    def active(self) -> int:
        return len(self._runners) - self._idle.qsize() + self._waiting

    @property
    def ready(self) -> bool:
        return all(r.ready for r in self._runners)

    async def load(self) -> None:
        for runner in self._runners:
            await runner.load()  # one at a time: loading in parallel only contends for disk
            self._idle.put_nowait(runner)

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[BackendEvent, None]:
        if not self.ready:
            raise BackendUnavailable("the model is still loading")
        if self._idle.empty() and self._waiting >= self._max_queue:
            raise BackendUnavailable(f"{self._waiting} requests already waiting")
        self._waiting += 1
        try:
            runner = await self._idle.get()
        finally:
            self._waiting -= 1
        try:
            async with aclosing(runner.stream(request)) as events:
                async for event in events:
                    yield event
        finally:
            self._idle.put_nowait(runner)

    async def aclose(self) -> None:
        await asyncio.gather(*(r.aclose() for r in self._runners))
