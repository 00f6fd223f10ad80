"""``FailoverEngine``: a cloud stream that survives the worker serving it.

Spot workers vanish mid-stream (SIGKILL, preemption past the grace period, a stall).
When the stream fails with a retryable error, the request is sent again, to another
worker if the pool can reach one within ``failover_wait_s``, else to the local model,
with the text already delivered as ``continuation``: the model resumes after it, so the
client sees one unbroken stream, nothing repeated, nothing lost. A request that had
not started streaming is retried on another worker, or handed back to the dispatcher
(which answers locally for ``auto`` requests). Failovers are capped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from edge_agent.engines.base import ON_FAILOVER, Engine, EngineEvent
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.remote import RemoteEngine
from edge_agent.errors import GenerationFailed, NoPeerAvailable, TransportError
from edge_agent.metrics import EdgeMetrics
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["FailoverEngine"]

log = logging.getLogger(__name__)

RETRYABLE = (TransportError, NoPeerAvailable, GenerationFailed)


class FailoverEngine(Engine):
    """The cloud engine the HTTP layer sees: a remote engine plus its fallbacks."""

    served_by = "cloud"

    def __init__(
        self,
        cloud: RemoteEngine,
        local: LocalEngine,
        metrics: EdgeMetrics,
        *,
        max_failovers: int,
        failover_wait_s: float,
    ) -> None:
        self._cloud = cloud
        self._local = local
        self._metrics = metrics
        self._max_failovers = max_failovers
        self._failover_wait_s = failover_wait_s

    @property
    def ready(self) -> bool:
        return self._cloud.ready

    async def available(self, timeout_s: float) -> bool:
        return await self._cloud.available(timeout_s)

    @property
    def model(self) -> str:
        return self._cloud.model

    @property
    def path(self) -> str | None:
        return self._cloud.path

    def start(self) -> None:
        self._cloud.start()

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        delivered = ""
        delivered_tokens = 0
        failovers = 0
        engine: Engine = self._cloud
        attempt = request
        while True:
            try:
                async with aclosing(engine.stream(attempt)) as events:
                    async for event in events:
                        if isinstance(event, TokenChunk):
                            delivered += event.text
                            delivered_tokens += event.n_tokens
                            yield event
                            continue
                        yield _total(event, request, delivered_tokens, attempt)
                        return
            except RETRYABLE as exc:
                failovers += 1
                if failovers > self._max_failovers:
                    raise
                nxt = await self._next_engine(started=delivered_tokens > 0)
                if nxt is None:  # nothing sent yet: the dispatcher decides (local if auto)
                    raise
                engine = nxt
                self._metrics.failovers.labels(engine.served_by).inc()
                if (hook := ON_FAILOVER.get()) is not None:
                    hook(engine.served_by, delivered_tokens)
                log.warning(
                    "request %s: %s after %d tokens (%s); continuing on %s",
                    request.request_id,
                    type(exc).__name__,
                    delivered_tokens,
                    exc,
                    engine.served_by,
                )
                resumed = _resume(request, delivered, delivered_tokens)
                if resumed is None:  # the budget of tokens was spent exactly at the failure
                    yield StreamEnd(
                        request_id=request.request_id,
                        finish_reason="length",
                        prompt_tokens=0,
                        completion_tokens=delivered_tokens,
                    )
                    return
                attempt = resumed

    async def _next_engine(self, *, started: bool) -> Engine | None:
        """Another worker if the pool re-links in time; else this device, but only for a
        stream already under way (one that has not started is the dispatcher's to route,
        so that its headers say where it was really served)."""
        if await self._cloud.available(self._failover_wait_s):
            return self._cloud
        return self._local if started else None

    async def aclose(self) -> None:
        await self._cloud.aclose()


def _resume(
    request: GenerateRequest, delivered: str, delivered_tokens: int
) -> GenerateRequest | None:
    params = request.params
    if params.max_tokens is not None:
        left = params.max_tokens - delivered_tokens
        if left <= 0:
            return None
        params = params.model_copy(update={"max_tokens": left})
    return request.model_copy(
        update={"continuation": request.continuation + delivered, "params": params}
    )


def _total(
    end: StreamEnd, request: GenerateRequest, delivered_tokens: int, attempt: GenerateRequest
) -> StreamEnd:
    """Usage as the client should see it: every token it received; the prompt without the
    resumed text (counted as the tokens it was generated as, the closest we know)."""
    if attempt is request:
        return end
    return StreamEnd(
        request_id=request.request_id,
        finish_reason=end.finish_reason,
        prompt_tokens=max(0, end.prompt_tokens - (delivered_tokens - end.completion_tokens)),
        completion_tokens=delivered_tokens,
    )
