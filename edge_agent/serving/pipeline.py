"""The one serving pipeline: a parsed request in, a stream of events out.

Both HTTP dialects hand a ``GenerateRequest`` and the route the client asked for to
``ServingPipeline.serve``, which

1. refuses a prompt past ``--max-prompt-tokens`` (stop strings included) and a request
   that would not fit the link to a worker (``wire.py``), whatever the route,
2. asks the router once for a plan (route, reason, fallback),
3. builds the engine that carries the plan out: the local engine, or a ``FailoverEngine``
   (the one owner of cloud retries and fallbacks),
4. reads that engine's stream up to its first token, so that the HTTP layer sends its
   headers (and a 200) only once something has been generated, with the truth in them,
5. hands back ``Served``: the events from there on, under the request's deadline.

``Served`` is where the stream is accounted, once, as the events go by: the decision
and failovers into the ``ServingReport`` (headers), tokens per engine that produced
them into the metrics and, for the cloud's share, the day's budget. Budget, clock and
metrics are injected; nothing here reads a global.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from edge_agent.engines.base import Decided, Engine, EngineEvent, Failover
from edge_agent.engines.failover import FailoverEngine
from edge_agent.engines.local import LocalEngine
from edge_agent.engines.second_look import SecondLookEngine
from edge_agent.errors import GenerationFailed, NoPeerAvailable, PromptTooLong, RequestTimeout
from edge_agent.metrics import EdgeMetrics
from edge_agent.router import (
    Decision,
    HeuristicRouter,
    Reason,
    RequestedRoute,
    Route,
    Router,
    estimate_tokens,
    extract_features,
)
from edge_agent.router.features import PromptFeatures
from edge_agent.router.second import load_prompt_head
from edge_agent.router.table import load_token_head, with_head_tokens
from edge_agent.serving.budget import CloudBudget
from edge_agent.serving.clock import SYSTEM_CLOCK, Clock
from edge_agent.serving.report import ServingReport
from edge_agent.serving.wire import check_fits
from edge_agent.settings import EdgeSettings
from shared.messages import GenerateRequest, StreamEnd, TokenChunk

__all__ = ["Served", "ServedEvent", "ServingLimits", "ServingPipeline"]

log = logging.getLogger(__name__)

ServedEvent = TokenChunk | StreamEnd | Failover
"""What the HTTP layer renders: text, the end, and where the stream moved."""


@dataclass(frozen=True)
class ServingLimits:
    """The pipeline's bounds; every one is an edge setting."""

    max_prompt_tokens: int = 32_768
    request_timeout_s: float = 600.0
    max_failovers: int = 2
    """Cloud attempts per request: at most ``max_failovers + 1``."""
    failover_wait_s: float = 3.0
    """How long a cloud attempt waits for a worker link when none is linked."""

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> ServingLimits:
        return cls(
            max_prompt_tokens=settings.max_prompt_tokens,
            request_timeout_s=settings.request_timeout_s,
            max_failovers=settings.max_failovers,
            failover_wait_s=settings.failover_wait_s,
        )


class ServingPipeline:
    """Routes each request once and runs the engine that carries the plan out."""

    def __init__(
        self,
        *,
        local: LocalEngine,
        cloud: Engine | None,
        router: Router | HeuristicRouter,
        metrics: EdgeMetrics,
        budget: CloudBudget,
        limits: ServingLimits | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``cloud`` is the single-attempt engine on the pool's warm worker (``None``:
        this agent has no cloud)."""
        self.local = local
        self.cloud = cloud
        self._router = router
        self._metrics = metrics
        self._budget = budget
        self._limits = limits or ServingLimits()
        self._clock = clock
        if cloud is not None:
            metrics.track_cloud(lambda: len(cloud.links()))
        metrics.track_budget(spent=lambda: budget.spent(clock.today()), limit=budget.daily_tokens)

    async def load_token_head(self) -> None:
        """Attach the router's token-embedding head for the local GGUF, if the router
        has one for it (``Router.head_for``), and with it the second look's prompt head
        (unless ``--no-router-second-look``). The SHA-256 that checks the GGUF reads the
        whole file (once: both heads check the same cached hash), so it runs on a thread,
        once the model has loaded (an edge's start-up does not wait for it); until then
        ``auto`` requests are routed on features alone, as they are anyway before the
        model can tokenise."""
        router = self._router
        if not isinstance(router, Router) or router.token_head is not None:
            return
        if router.head_for is not None:
            router.attach_token_head(await asyncio.to_thread(load_token_head, router.head_for))
            if router.token_head is not None and router.config.second_look:
                head = await asyncio.to_thread(load_prompt_head, router.head_for)
                if head is not None and not self.local.read_state_from(head.tensor):
                    log.warning(
                        "router: no second look: its head reads %s, which the local runner "
                        "cannot (why: its warning, at load or just above)",
                        head.tensor,
                    )
                    head = None
                router.attach_prompt_head(head)

    @property
    def budget(self) -> CloudBudget:
        """The day's cloud budget (read by the status page)."""
        return self._budget

    @property
    def clock(self) -> Clock:
        return self._clock

    @classmethod
    def from_settings(
        cls,
        settings: EdgeSettings,
        *,
        local: LocalEngine,
        cloud: Engine | None,
        metrics: EdgeMetrics,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ServingPipeline:
        """The pipeline an edge agent runs with: its router, limits and budget."""
        return cls(
            local=local,
            cloud=cloud,
            router=Router.from_settings(settings, model_path=local.model_path),
            metrics=metrics,
            budget=CloudBudget(settings.cloud_daily_token_budget),
            limits=ServingLimits.from_settings(settings),
            clock=clock,
        )

    @asynccontextmanager
    async def serve(
        self, request: GenerateRequest, requested: RequestedRoute, report: ServingReport
    ) -> AsyncIterator[Served]:
        """Route ``request``, open its stream and read it up to the first token; leaving
        the block closes the stream, which cancels generation wherever it still runs (the
        client went away). ``report`` is filled in as routing and serving go."""
        started = self._clock.monotonic()
        plan = self._plan(request, requested)
        log.debug("request %s: plan %s", request.request_id, plan)
        if plan.second_look is None:  # else the engine's ``Decided`` event says
            _decided(plan, report, self._metrics)
        engine = self._engine_for(plan)
        deadline = asyncio.get_running_loop().time() + self._limits.request_timeout_s
        served = Served(
            engine.stream(request),
            plan=plan,
            report=report,
            started=started,
            deadline=deadline,
            timeout_s=self._limits.request_timeout_s,
            metrics=self._metrics,
            budget=self._budget,
            clock=self._clock,
            model_of=self._model_of,
            path=self._path,
        )
        try:
            await served.open()
            yield served
        finally:
            await served.aclose()

    def _plan(self, request: GenerateRequest, requested: RequestedRoute) -> Decision:
        features = extract_features(request)
        limit = self._limits.max_prompt_tokens
        # Stop strings are text the worker holds and scans too: they count.
        tokens = features.prompt_tokens + sum(estimate_tokens(s) for s in request.params.stop)
        if tokens > limit:
            raise PromptTooLong(
                f"This prompt is about {tokens} tokens (estimated from its length, stop "
                f"strings included); this agent accepts at most {limit} "
                "(--max-prompt-tokens). Shorten it, or raise the limit.",
                param="messages" if request.messages is not None else "prompt",
            )
        check_fits(request)
        if requested == "auto":
            features = self._with_ask_tokens(request, features)
        return self._router.decide(
            features,
            requested=requested,
            cloud_available=self.cloud is not None and self.cloud.ready,
            cloud_budget_left=self._budget.has_room(self._clock.today()),
            local_busy=self.local.busy,
            local_ready=self.local.ready,
        )

    def _with_ask_tokens(
        self, request: GenerateRequest, features: PromptFeatures
    ) -> PromptFeatures:
        """``features`` with the local token ids the router's token-embedding head reads
        (``table.with_head_tokens``), when it has one for the local model (the tokeniser
        is the inference side's; the router stays pure). Before the model loads there
        are none: features only."""
        router = self._router
        if not isinstance(router, Router) or router.token_head is None:
            return features
        return with_head_tokens(
            features,
            request,
            self.local.tokenize,
            router.token_head,
            last_ask=router.prompt_head is not None,
        )

    def _engine_for(self, plan: Decision) -> Engine:
        if plan.route is Route.LOCAL:
            if plan.second_look is not None and self.cloud is not None:
                cloud = self._failover(self.cloud, fallback=Route.LOCAL)
                return SecondLookEngine(self.local, cloud, plan.second_look)
            return self.local
        if self.cloud is None:
            raise NoPeerAvailable(
                "The cloud route was requested but this agent has no cloud configured."
            )
        return self._failover(self.cloud, fallback=plan.fallback)

    def _failover(self, cloud: Engine, *, fallback: Route | None) -> FailoverEngine:
        return FailoverEngine(
            cloud,
            self.local,
            max_failovers=self._limits.max_failovers,
            wait_s=self._limits.failover_wait_s,
            fallback=fallback,
        )

    def _model_of(self, route: Route) -> str:
        if route is Route.CLOUD and self.cloud is not None:
            return self.cloud.model
        return self.local.model

    def _path(self) -> str | None:
        return self.cloud.path if self.cloud is not None else None


def _decided(decision: Decision, report: ServingReport, metrics: EdgeMetrics) -> None:
    """Make a final route decision visible: the report (headers) and the metric."""
    report.served_by = decision.route
    report.reason = decision.reason
    if report.route is None:
        report.route = decision.route
    metrics.route_decisions.labels(decision.route.value, decision.reason.value).inc()


class Served:
    """A request's stream in progress: iterate it for ``ServedEvent``s.

    Not a generator itself (an outer generator would not close the engine's stream when
    it is closed), so closing stays with ``ServingPipeline.serve``. Every event is
    accounted exactly once, when it arrives from the engine.
    """

    def __init__(
        self,
        events: AsyncGenerator[EngineEvent, None],
        *,
        plan: Decision,
        report: ServingReport,
        started: float,
        deadline: float,
        timeout_s: float,
        metrics: EdgeMetrics,
        budget: CloudBudget,
        clock: Clock,
        model_of: Callable[[Route], str],
        path: Callable[[], str | None],
    ) -> None:
        self._events = events
        self._report = report
        self._deadline = deadline
        self._timeout_s = timeout_s
        self._metrics = metrics
        self._budget = budget
        self._clock = clock
        self._model_of = model_of
        self._path = path
        self._serving = plan.route
        """Who produces the tokens now."""
        self._opened = False
        self._buffer: deque[ServedEvent] = deque()
        self._completion: Counter[Route] = Counter()
        self._prompt_by: Route | None = None
        self.started = started
        """When the pipeline took the request (the clock's monotonic seconds)."""
        self.first_token_at: float | None = None
        self.end: StreamEnd | None = None
        self.model = model_of(plan.route)
        """The model that serves the first token: what responses name."""

    async def open(self) -> None:
        """Read up to the first token (or the end): routing settles before any header."""
        while not self._buffer or isinstance(self._buffer[-1], Failover):
            self._buffer.append(await self._pull())
        self._opened = True
        self.model = self._model_of(self._serving)
        if self._report.served_by is Route.CLOUD:
            self._report.path = self._path()

    @property
    def failovers(self) -> int:
        """Times the stream moved so far."""
        return len(self._report.failovers)

    def __aiter__(self) -> Served:
        return self

    async def __anext__(self) -> ServedEvent:
        if self._buffer:
            return self._buffer.popleft()
        if self.end is None:
            return await self._pull()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        await self._events.aclose()

    async def _pull(self) -> ServedEvent:
        """The engine's next event, accounted; the deadline bounds the wait."""
        timeout = asyncio.timeout_at(self._deadline)
        try:
            async with timeout:
                event = await anext(self._events)
        except StopAsyncIteration:
            raise GenerationFailed("the engine stream ended without a StreamEnd") from None
        except TimeoutError:
            if not timeout.expired():
                raise
            raise RequestTimeout(_timed_out(self._timeout_s, started=self._opened)) from None
        if isinstance(event, Decided):
            self._settle(event.decision)
            return await self._pull()
        self._observe(event)
        return event

    def _settle(self, decision: Decision) -> None:
        """The route the second look settled, accounted as the plan's decision."""
        self._serving = decision.route
        _decided(decision, self._report, self._metrics)
        outcome = decision.route.value
        self._metrics.second_look.labels(outcome).observe(self._clock.monotonic() - self.started)

    def _observe(self, event: ServedEvent) -> None:
        if isinstance(event, Failover):
            self._serving = event.to
            self._report.failovers.append(event)
            self._metrics.failovers.labels(event.to.value).inc()
            if not self._opened:  # headers not sent: they say who really serves
                self._report.served_by = event.to
                if event.to is Route.LOCAL:
                    self._report.reason = Reason.CLOUD_UNAVAILABLE
        elif isinstance(event, TokenChunk):
            if event.n_tokens > 0:
                if self.first_token_at is None:
                    self.first_token_at = self._clock.monotonic()
                    ttft = self.first_token_at - self.started
                    self._report.ttft_s = ttft
                    self._metrics.time_to_first_token.labels(self._serving.value).observe(ttft)
                    self._prompt_by = self._serving
                self._completion[self._serving] += event.n_tokens
        else:
            self.end = event
            self._account(event)

    def _account(self, end: StreamEnd) -> None:
        """Tokens to whoever produced them: completion tokens per engine, the prompt to
        the one that produced the first token; the cloud's share to the day's budget."""
        completion = self._completion
        missing = end.completion_tokens - sum(completion.values())
        if missing > 0:  # an engine that counted tokens it sent no chunk for
            completion[self._serving] += missing
        prompt_by = self._prompt_by or self._serving
        self._report.prompt_tokens = end.prompt_tokens
        self._report.completion_tokens = sum(completion.values())
        for route, tokens in completion.items():
            self._metrics.tokens.labels(route.value, "completion").inc(tokens)
        self._metrics.tokens.labels(prompt_by.value, "prompt").inc(end.prompt_tokens)
        cloud = completion[Route.CLOUD] + (end.prompt_tokens if prompt_by is Route.CLOUD else 0)
        if cloud:
            self._budget.record(cloud, self._clock.today())


def _timed_out(timeout_s: float, *, started: bool) -> str:
    where = "while generating" if started else "waiting for a model"
    return (
        f"The request took longer than {timeout_s:g} s (--request-timeout-s) {where}; "
        "it was cancelled."
    )
