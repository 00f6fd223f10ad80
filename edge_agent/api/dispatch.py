"""From a parsed request to an open engine stream: model name -> route -> engine.

Both wire dialects (OpenAI, Ollama) end here, so the rules live once: which model names
mean which route, the ``X-Tandem-Route`` override, asking the router, answering 503 for
a forced but unreachable cloud, and falling back to the local model when an ``auto``
request's cloud stream fails before its first token. ``serve()`` hands back the stream
with its first event already received, which is what lets the HTTP layer send headers
(and a 200) only once something has actually been generated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType

from edge_agent.api.context import ROUTE_HEADER, RequestContext
from edge_agent.api.errors import ModelNotFound
from edge_agent.engines.base import ON_FAILOVER, Engine, EngineEvent
from edge_agent.engines.local import LocalEngine
from edge_agent.errors import (
    GenerationFailed,
    NoPeerAvailable,
    PromptTooLong,
    RequestInvalid,
    RequestTimeout,
    TransportError,
)
from edge_agent.metrics import EdgeMetrics
from edge_agent.router import (
    Decision,
    HeuristicRouter,
    Reason,
    RequestedRoute,
    Route,
    Router,
    extract_features,
)
from edge_agent.router.budget import CloudBudget
from edge_agent.router.cascade import CascadeConfig, judge_start
from edge_agent.settings import EdgeSettings
from inference import ConfidenceProbe
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["AUTO_MODEL", "CLOUD_MODEL", "EDGE_MODEL", "Dispatcher", "Served"]

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"
"""Model name meaning "let the router choose" (as does an empty or missing one)."""
EDGE_MODEL = "edge"
"""Model name forcing the local model, whatever its file is called."""
CLOUD_MODEL = "cloud"
"""Model name forcing the cloud model."""

_ROUTES: Mapping[str, RequestedRoute] = MappingProxyType(
    {"auto": "auto", "local": "local", "cloud": "cloud"}
)


class Served:
    """An engine stream in progress: iterate it for the events, the ones already received
    (the first, or the cascade's held-back start) included.

    Not a generator itself (an outer generator would not close the engine's stream when
    it is closed), so closing stays with ``Dispatcher.serve``'s ``aclosing``. Records
    time to first token and token counts as the events go by.
    """

    def __init__(
        self,
        engine: Engine,
        decision: Decision,
        events: AsyncGenerator[EngineEvent, None],
        received: Iterable[EngineEvent],
        *,
        started: float,
        metrics: EdgeMetrics,
        budget: CloudBudget | None = None,
    ) -> None:
        self.engine = engine
        self._budget = budget
        self.decision = decision
        self.end: StreamEnd | None = None
        self._events = events
        self._received = deque(received)
        self._metrics = metrics
        self.started = started
        """Monotonic arrival time of the request."""
        self.first_token_at: float | None = None
        """Monotonic time the first generated token arrived."""

    def __aiter__(self) -> Served:
        return self

    async def __anext__(self) -> EngineEvent:
        if self.end is not None:
            raise StopAsyncIteration
        if self._received:
            event = self._received.popleft()
        else:
            try:
                event = await anext(self._events)
            except StopAsyncIteration:
                raise GenerationFailed("the engine stream ended without a StreamEnd") from None
        self._observe(event)
        return event

    def _observe(self, event: EngineEvent) -> None:
        served_by = self.engine.served_by
        if isinstance(event, TokenChunk):
            if self.first_token_at is None and event.n_tokens > 0:
                self.first_token_at = time.monotonic()
                elapsed = self.first_token_at - self.started
                self._metrics.time_to_first_token.labels(served_by).observe(elapsed)
        else:
            self.end = event
            self._metrics.tokens.labels(served_by, "prompt").inc(event.prompt_tokens)
            self._metrics.tokens.labels(served_by, "completion").inc(event.completion_tokens)
            if self._budget is not None and served_by == Route.CLOUD.value:
                self._budget.record(event.prompt_tokens + event.completion_tokens, _today())


@dataclass(frozen=True)
class _Opened:
    """A stream the dispatcher opened: where, why, and the events already received."""

    engine: Engine
    decision: Decision
    received: list[EngineEvent]
    events: AsyncGenerator[EngineEvent, None]


class Dispatcher:
    """Resolves model names to routes and opens the chosen engine's stream."""

    def __init__(
        self,
        *,
        settings: EdgeSettings,
        local: LocalEngine,
        cloud: Engine | None,
        router: Router | HeuristicRouter,
        metrics: EdgeMetrics,
    ) -> None:
        self._settings = settings
        self._local = local
        self._cloud = cloud
        self._router = router
        self._metrics = metrics
        self.budget = CloudBudget(settings.cloud_daily_token_budget)
        """Cloud tokens spent today; one per agent, fed by every cloud ``StreamEnd``."""
        self._cascade = CascadeConfig.from_settings(settings)

    @property
    def local(self) -> LocalEngine:
        return self._local

    @property
    def cloud(self) -> Engine | None:
        return self._cloud

    def model_ids(self) -> list[str]:
        """Every model name a request may use, as listed by ``/v1/models``."""
        ids = [AUTO_MODEL, EDGE_MODEL]
        if self._cloud is not None:
            ids.append(CLOUD_MODEL)
        if self._local.model not in ids:
            ids.append(self._local.model)
        return ids

    def requested_route(self, model: str | None, header: str | None) -> RequestedRoute:
        """The route a request asks for: ``model``'s, unless ``X-Tandem-Route`` overrides.

        An unknown model is refused even with the header: a typo should not quietly be
        served by something else.
        """
        route = self._route_for_model((model or "").strip())
        if header is None:
            return route
        override = _ROUTES.get(header.strip().lower())
        if override is None:
            raise RequestInvalid(f"{ROUTE_HEADER} must be one of: local, cloud, auto.")
        return override

    def _route_for_model(self, model: str) -> RequestedRoute:
        if model in ("", AUTO_MODEL):
            return self._settings.default_route
        if model in (EDGE_MODEL, self._local.model):
            return "local"
        if model == CLOUD_MODEL or (self._cloud is not None and model == self._cloud.model):
            return "cloud"
        raise ModelNotFound(model)

    @asynccontextmanager
    async def serve(
        self, ctx: RequestContext, request: GenerateRequest, requested: RequestedRoute
    ) -> AsyncIterator[Served]:
        """Route ``request`` and open its stream; leaving the block closes the stream,
        which cancels generation if it is still running (the client went away)."""
        cloud = self._cloud
        cloud_ready = cloud is not None and cloud.ready
        ON_FAILOVER.set(ctx.count_failover)
        features = extract_features(request)
        limit = self._settings.max_prompt_tokens
        if features.prompt_tokens > limit:
            raise PromptTooLong(
                f"This prompt is about {features.prompt_tokens} tokens (estimated from its "
                f"length); this agent accepts at most {limit} (--max-prompt-tokens). "
                "Shorten it, or raise the limit.",
                param="messages" if request.messages is not None else "prompt",
            )
        verdict = self._router.decide(
            features,
            requested=requested,
            cloud_available=cloud_ready,
            cloud_budget_left=self.budget.has_room(_today()),
            local_busy=self._local.busy,
        )
        timeout_s = self._settings.request_timeout_s
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                if verdict.cascade and self._cascade.enabled and cloud is not None:
                    opened = await self._run_cascade(ctx, request, cloud)
                else:
                    opened = await self._route(ctx, request, requested, verdict)
        except TimeoutError:
            raise RequestTimeout(_timed_out(timeout_s, started=False)) from None
        ctx.path = opened.engine.path
        async with aclosing(_until(opened.events, deadline, timeout_s)) as events:
            yield Served(
                opened.engine,
                opened.decision,
                events,
                opened.received,
                started=ctx.started,
                metrics=self._metrics,
                budget=self.budget,
            )

    async def _route(
        self,
        ctx: RequestContext,
        request: GenerateRequest,
        requested: RequestedRoute,
        verdict: Decision,
    ) -> _Opened:
        """Open the decided engine's stream (falling back to local, for ``auto``, when
        the cloud fails before its first token)."""
        cloud = self._cloud
        decision = self._decided(ctx, verdict)
        if decision.route is Route.LOCAL:
            events, first = await self._start(self._local, request)
            return _Opened(self._local, decision, [first], events)
        if cloud is None:
            raise NoPeerAvailable(
                "The cloud route was requested but this agent has no cloud configured."
            )
        if requested == "auto":  # the router only picks a linked cloud; it may fail yet
            try:
                if not cloud.ready:
                    raise NoPeerAvailable("the cloud link went down after routing")
                events, first = await self._start(cloud, request)
            except (NoPeerAvailable, TransportError) as exc:
                return await self._local_instead(ctx, request, exc)
            return _Opened(cloud, decision, [first], events)
        return await self._start_cloud_only(cloud, decision, request)

    async def _start_cloud_only(
        self, cloud: Engine, decision: Decision, request: GenerateRequest
    ) -> _Opened:
        """A request that must run in the cloud and has not started is retried: a spot
        fleet between two workers (one preempted, its replacement linking) is a pause,
        not a failure. Each try waits up to ``connect_timeout_s`` for a link; 503 after
        ``max_failovers`` retries or a wait that found none."""
        wait_s = self._settings.connect_timeout_s
        retries = 0
        while True:
            if not (cloud.ready or await cloud.available(wait_s)):
                raise NoPeerAvailable(
                    "The cloud route was requested but no cloud worker is reachable."
                )
            try:
                events, first = await self._start(cloud, request)
            except (NoPeerAvailable, TransportError, GenerationFailed) as exc:
                retries += 1
                if retries > self._settings.max_failovers:
                    raise
                log.info(
                    "request %s: cloud failed before its first token (%r); retrying",
                    request.request_id,
                    exc,
                )
                continue
            return _Opened(cloud, decision, [first], events)

    async def _local_instead(
        self, ctx: RequestContext, request: GenerateRequest, exc: Exception
    ) -> _Opened:
        """The cloud failed before its first token: serve an ``auto`` request locally."""
        log.info(
            "request %s: cloud failed before its first token (%r); serving locally",
            ctx.request_id,
            exc,
        )
        decision = self._decided(ctx, Decision(Route.LOCAL, Reason.CLOUD_UNAVAILABLE))
        events, first = await self._start(self._local, request)
        return _Opened(self._local, decision, [first], events)

    async def _run_cascade(
        self, ctx: RequestContext, request: GenerateRequest, cloud: Engine
    ) -> _Opened:
        """Start locally, hold back the first tokens, then keep them or escalate.

        Decides once the probe has every watched token's confidence or the stream has
        ended (a short answer is judged on the tokens it has). An escalation with no
        reachable cloud, or a spent budget, keeps the local start: a possibly weak
        answer beats none, and the reason says why the cloud was not used.
        """
        probe = ConfidenceProbe(self._cascade.n_tokens)
        events = self._local.stream(request, probe=probe)
        held: list[EngineEvent] = []
        try:
            while not probe.full and not (held and isinstance(held[-1], StreamEnd)):
                try:
                    held.append(await anext(events))
                except StopAsyncIteration:
                    raise GenerationFailed("the engine stream ended without a StreamEnd") from None
        except BaseException:
            await events.aclose()
            raise
        reason = judge_start(probe.values, self._cascade)
        log.debug("request %s: cascade %s over %d tokens", ctx.request_id, reason, len(held))
        if reason is not Reason.CONFIDENT:
            if not cloud.ready:
                reason = Reason.CLOUD_UNAVAILABLE
            elif not self.budget.has_room(_today()):
                reason = Reason.BUDGET_EXHAUSTED
        if reason is not Reason.LOW_CONFIDENCE:
            decision = self._decided(ctx, Decision(Route.LOCAL, reason))
            return _Opened(self._local, decision, held, events)
        await events.aclose()  # discard the local start: cancels its generation
        decision = self._decided(ctx, Decision(Route.CLOUD, reason))
        try:
            cloud_events, first = await self._start(cloud, request)
        except (NoPeerAvailable, TransportError) as exc:
            return await self._local_instead(ctx, request, exc)
        return _Opened(cloud, decision, [first], cloud_events)

    def _decided(self, ctx: RequestContext, decision: Decision) -> Decision:
        """Make ``decision`` visible: response headers, metric, debug log."""
        ctx.served_by = decision.route.value
        ctx.reason = decision.reason.value
        self._metrics.route_decisions.labels(decision.route.value, decision.reason.value).inc()
        log.debug("request %s: %s (%s)", ctx.request_id, decision.route, decision.reason)
        return decision

    @staticmethod
    async def _start(
        engine: Engine, request: GenerateRequest
    ) -> tuple[AsyncGenerator[EngineEvent, None], EngineEvent]:
        """Open ``engine``'s stream and wait for its first event; on any failure the
        stream is closed before the error propagates."""
        events = engine.stream(request)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            await events.aclose()
            raise GenerationFailed("the engine stream ended without a StreamEnd") from None
        except BaseException:
            await events.aclose()
            raise
        return events, first


async def _until(
    events: AsyncGenerator[EngineEvent, None], deadline: float, timeout_s: float
) -> AsyncGenerator[EngineEvent, None]:
    """``events`` until the request's deadline; then the engine's stream is closed
    (cancelling generation wherever it runs) and ``RequestTimeout`` raised, which the
    HTTP layer answers with a 504, or an error event once the stream has started."""
    async with aclosing(events):
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise RequestTimeout(_timed_out(timeout_s, started=True)) from None
            yield event


def _timed_out(timeout_s: float, *, started: bool) -> str:
    where = "while generating" if started else "waiting for a model"
    return (
        f"The request took longer than {timeout_s:g} s (--request-timeout-s) {where}; "
        "it was cancelled."
    )


def _today() -> date:
    """The budget's day: UTC, so that it rolls over at the same instant everywhere."""
    return datetime.now(UTC).date()
