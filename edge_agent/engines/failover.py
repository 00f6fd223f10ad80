"""``FailoverEngine``: one request's cloud stream, and the one owner of its retries.

Spot workers vanish (SIGKILL, preemption past the grace period, a stall, an error
frame). When a cloud attempt fails with a retryable error, the request goes again to a
worker if the pool holds (or links within ``wait_s``) one and attempts are left, else
to the local model, with the text already delivered as ``continuation``: the model
resumes after it, so the client sees one unbroken stream, nothing repeated, nothing
lost. Every move is a ``Failover`` event in the stream, so headers, metrics, usage and
the budget all know who served what.

The bound, stated once: at most ``max_failovers + 1`` cloud attempts per request. A
request that has not delivered a token falls back only where its plan says (``auto``:
the local model; a forced ``cloud``: nowhere, ``NoPeerAvailable``, a 503). A stream
already under way always finishes locally rather than break.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from edge_agent.engines.base import Engine, EngineEvent, Failover
from edge_agent.engines.local import LocalEngine
from edge_agent.errors import GenerationFailed, NoPeerAvailable, TransportError
from edge_agent.router import Route
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["RETRYABLE", "FailoverEngine"]

log = logging.getLogger(__name__)

RETRYABLE = (TransportError, NoPeerAvailable, GenerationFailed)
"""What a cloud attempt may fail with and still be worth another: a dead or closed link,
a worker that refused (draining, overloaded), a stall, a worker's generation error.
A bad request (400) or a prompt too long for the worker is not: it would fail again."""


class FailoverEngine(Engine):
    """The cloud, as one request sees it: attempts on workers, then its fallback.

    ``cloud`` makes one attempt per ``stream`` call (``RemoteEngine``) and says through
    ``ready``/``available`` whether a worker is linked; built per request."""

    served_by = Route.CLOUD

    def __init__(
        self,
        cloud: Engine,
        local: LocalEngine,
        *,
        max_failovers: int,
        wait_s: float,
        fallback: Route | None,
    ) -> None:
        self._cloud = cloud
        self._local = local
        self._max_attempts = max_failovers + 1
        self._wait_s = wait_s
        self._fallback = fallback

    @property
    def ready(self) -> bool:
        return self._cloud.ready

    @property
    def model(self) -> str:
        return self._cloud.model

    @property
    def path(self) -> str | None:
        return self._cloud.path

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[EngineEvent, None]:
        delivered = ""
        delivered_tokens = 0
        attempts = 0
        failure: Exception | None = None
        attempt = request
        while True:
            engine = await self._next_engine(attempts, started=delivered_tokens > 0)
            if engine is None:
                raise NoPeerAvailable(_refusal(attempts, self._wait_s, failure)) from failure
            if engine is self._cloud:
                attempts += 1
            elif failure is None:  # the plan's cloud was never reached: that is a failure too
                failure = NoPeerAvailable(f"no cloud worker reachable within {self._wait_s:g} s")
            if failure is not None:
                log.warning(
                    "request %s: %s after %d tokens (%s); continuing on %s",
                    request.request_id,
                    type(failure).__name__,
                    delivered_tokens,
                    failure,
                    engine.served_by,
                )
                yield Failover(engine.served_by, delivered_tokens, type(failure).__name__)
            if attempts > 1 and engine is self._cloud:
                # Every attempt its own id: the same worker may still be winding the last
                # one down, and its late frames must not land in this one.
                attempt = attempt.model_copy(
                    update={"request_id": _attempt_id(request.request_id, attempts)}
                )
            try:
                async with aclosing(engine.stream(attempt)) as events:
                    async for event in events:
                        if isinstance(event, TokenChunk):
                            delivered += event.text
                            delivered_tokens += event.n_tokens
                            yield event
                        elif isinstance(event, StreamEnd):
                            yield _total(event, request, delivered_tokens, attempt)
                            return
            except RETRYABLE as exc:
                if engine is self._local:
                    raise
                failure = exc
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

    async def _next_engine(self, attempts: int, *, started: bool) -> Engine | None:
        """A worker while attempts are left and one is linked (or links in time); then
        this device, for a stream under way or a plan that falls back to it."""
        if attempts < self._max_attempts and (
            self._cloud.ready or await self._cloud.available(self._wait_s)
        ):
            return self._cloud
        if started or self._fallback is Route.LOCAL:
            return self._local
        return None


def _refusal(attempts: int, wait_s: float, failure: Exception | None) -> str:
    if failure is None:
        return (
            "The cloud route was requested but no cloud worker was reachable within "
            f"{wait_s:g} s (--failover-wait-s)."
        )
    return (
        f"The cloud route was requested but {attempts} cloud attempt(s) failed before the "
        f"first token (last: {failure})."
    )


def _attempt_id(request_id: str, attempt: int) -> str:
    """``request_id`` with the attempt's number, within the protocol's 128 characters."""
    suffix = f"~{attempt}"
    return request_id[: 128 - len(suffix)] + suffix


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
