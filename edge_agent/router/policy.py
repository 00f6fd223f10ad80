"""Where a request runs: ``Router.decide(features, ...) -> Decision``.

Two layers. First the policies, fixed rules that always win because they are about what
is possible or allowed rather than about difficulty: a forced route, no reachable cloud,
the day's cloud budget spent, the local model still loading, a prompt the local context
cannot hold, the local queue too long, a prompt or requested answer past the configured
limits. Then difficulty: the learned ``Router`` scores the prompt with boosted trees
(``model.py``), blended with the local model's token-embedding head when the request
carries its token ids (``table.py``), and sends it to the cloud at or above a threshold;
with a prompt head for the local GGUF, a score short of sure takes a second look after
the local prefill instead (``second.py``).
(A confidence cascade, starting band prompts locally and escalating on low confidence,
was removed on 2026-12-06: the small model's confidence did not predict a wrong answer,
docs/router.md.)
``HeuristicRouter`` is the hand-written rule list it replaced, kept as the named baseline
for ``bench/router.py`` and ``python -m router_lab.evaluate --router heuristic``.

Reasons are a small closed set because they become the ``X-Tandem-Route-Reason`` header
and a Prometheus label (an open set would explode the metric's cardinality); each names
the signal that decided.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from edge_agent.router.features import PromptFeatures
from edge_agent.router.model import RouterModel, load_model, logit
from edge_agent.router.second import PromptHead, SecondLook
from edge_agent.router.structured import wants_cloud_for_structure
from edge_agent.router.table import TokenHead, blend
from edge_agent.router.vector import FEATURE_NAMES
from edge_agent.settings import EdgeSettings

__all__ = [
    "Decision",
    "HeuristicRouter",
    "Reason",
    "RequestedRoute",
    "Route",
    "Router",
    "RouterConfig",
]

RequestedRoute = Literal["auto", "local", "cloud"]
"""What the client asked for: a fixed engine, or the router's choice."""


class Route(StrEnum):
    """Which engine serves the request; the value is ``X-Tandem-Served-By``."""

    LOCAL = "local"
    CLOUD = "cloud"


class Reason(StrEnum):
    """Why the router chose its route (kebab-case: the header and label value)."""

    FORCED_LOCAL = "forced-local"
    FORCED_CLOUD = "forced-cloud"
    CLOUD_UNAVAILABLE = "cloud-unavailable"
    BUDGET_EXHAUSTED = "budget-exhausted"
    CONTEXT_TOO_LONG = "context-too-long"
    LOCAL_OVERLOADED = "local-overloaded"
    LOCAL_LOADING = "local-loading"
    """The local model has not loaded yet (an agent just started): the cloud serves."""
    LONG_PROMPT = "long-prompt"
    LONG_OUTPUT = "long-output"
    CODE = "code"
    MATH = "math"
    REASONING = "reasoning"
    EXPERT_DOMAIN = "expert-domain"
    EXTRACTION = "extraction"
    HARD = "hard"
    """The learned score, with no single feature dominating it."""
    SIMPLE = "simple"
    STRUCTURED_OUTPUT = "structured-output"
    """The answer must match a JSON schema or be a tool call (``structured.py``)."""
    SECOND_LOOK = "second-look"
    """The local model's own reading of the prompt, after its prefill (``second.py``)."""


_REASON_OF_FEATURE: Mapping[str, Reason] = MappingProxyType(
    {
        "log_prompt_tokens": Reason.LONG_PROMPT,
        "log_last_user_tokens": Reason.LONG_PROMPT,
        "log_max_tokens": Reason.LONG_OUTPUT,
        "numbers": Reason.MATH,
        "max_number_digits": Reason.MATH,
        "questions": Reason.REASONING,
        "log_turns": Reason.REASONING,
        "logic": Reason.REASONING,
        "history_hard": Reason.REASONING,
        "follow_up": Reason.REASONING,
        "history_hard_x_follow_up": Reason.REASONING,
        "log_previous_answer_tokens": Reason.REASONING,
    }
)
"""Which reason a feature's contribution speaks for, for prompts with no content marker
(``_REASON_OF_FLAG`` names those first, so the markers need no entry here). The rest
(language, system prompt, "easy" markers) only ever argue for local and explain nothing
about escalating, and the word evidence names no reason of its own: when nothing else
pushes towards the cloud, the reason is ``hard``. Nor does the last sentence's length: a
20-token instruction is above that feature's mean, but calling it a ``long-prompt`` would
mislead."""


_REASON_OF_FLAG: tuple[tuple[str, Reason], ...] = (
    ("has_code", Reason.CODE),
    ("has_math", Reason.MATH),
    ("proof", Reason.MATH),
    ("expert", Reason.EXPERT_DOMAIN),
    ("structure", Reason.EXTRACTION),
    ("writing", Reason.LONG_OUTPUT),
    ("has_reasoning", Reason.REASONING),
    ("depth", Reason.REASONING),
    ("planning", Reason.REASONING),
)
"""Content markers that name an escalation's reason when present, most specific first
(a request for Python code that is also long-form writing is a ``code`` request)."""


@dataclass(frozen=True)
class Decision:
    """The router's plan for one request: where it runs, why, and what then.

    ``fallback`` is where the request goes if ``route`` fails before its first token
    (``None``: nowhere, the client gets the error: a forced route means what it says).
    ``p_cloud`` is the learned score, when one was computed. ``second_look``: the route
    is local for now, and the prompt state after the local prefill finishes deciding.
    """

    route: Route
    reason: Reason
    p_cloud: float | None = None
    fallback: Route | None = None
    second_look: SecondLook | None = None


@dataclass(frozen=True)
class RouterConfig:
    """Limits of the ``auto`` route; every one is an edge setting."""

    auto_local_max_prompt_tokens: int = 1024
    """Longer (estimated) prompts go to the cloud: the local model's quality and speed
    both fall off with length. Below it the learned router decides, with length among
    its features: a page of pasted text that ends in "what is its title?" is an easy
    prompt (every labelled set says so), and 400, the default until 2026-11-29, sent
    such prompts to the cloud whatever their score."""
    auto_local_max_tokens: int = 512
    """Requests asking for more output go to the cloud: long answers are slow on a Pi."""
    local_n_ctx: int = 2048
    """The local model's context window: prompts that cannot fit must go to the cloud."""
    local_overload_queue: int | None = 4
    """More local requests than this (generating or waiting) send ``auto`` ones to the
    cloud; ``None`` never does."""
    cloud_threshold: float | None = None
    """Learned score at or above which a prompt goes to the cloud where no second look
    follows; ``None`` = the threshold the weights were trained with."""
    second_look_threshold: float | None = None
    """The second look's blended score at or above which a prompt escalates; ``None`` =
    the threshold stored with the prompt head. Without it an operator could move only
    the first look's threshold, which a prompt the look decides never meets."""
    structured_to_cloud: bool = True
    """Send requests constrained to JSON (schemas, tool calls) to the cloud (``structured.py``)."""
    second_look: bool = True
    """Take the second look (``second.py``) where the local GGUF has a prompt head."""
    second_look_max_prompt_tokens: int = 1024
    """Longer (estimated) prompts get no second look: an escalation after it waits for
    the prefill, seconds for a page on a small device (docs/router.md, round 6)."""

    def __post_init__(self) -> None:
        limits = (self.auto_local_max_prompt_tokens, self.auto_local_max_tokens)
        if min(*limits, self.second_look_max_prompt_tokens) < 0:
            raise ValueError("router thresholds must be >= 0")
        if self.local_n_ctx < 1:
            raise ValueError("local_n_ctx must be >= 1")
        if self.local_overload_queue is not None and self.local_overload_queue < 0:
            raise ValueError("local_overload_queue must be >= 0")
        for name in ("cloud_threshold", "second_look_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be within (0, 1)")

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> RouterConfig:
        """The limits an edge agent runs with."""
        return cls(
            auto_local_max_prompt_tokens=settings.auto_local_max_prompt_tokens,
            auto_local_max_tokens=settings.auto_local_max_tokens,
            local_n_ctx=settings.n_ctx,
            local_overload_queue=settings.local_overload_queue,
            cloud_threshold=settings.router_cloud_threshold,
            second_look_threshold=settings.router_second_look_threshold,
            structured_to_cloud=settings.structured_to_cloud,
            second_look=settings.router_second_look,
            second_look_max_prompt_tokens=settings.router_second_look_max_prompt_tokens,
        )


class _PolicyRouter(ABC):
    """The policies every router applies before judging difficulty."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config

    def decide(
        self,
        features: PromptFeatures,
        *,
        requested: RequestedRoute,
        cloud_available: bool,
        cloud_budget_left: bool = True,
        local_busy: int = 0,
        local_ready: bool = True,
    ) -> Decision:
        """The route for a request with ``features``.

        A forced route is honoured even when its engine cannot serve (the caller answers
        503 for an unreachable cloud: the client asked for it explicitly). ``auto`` never
        picks an unavailable cloud, nor one whose daily budget is spent, and when it picks
        the cloud it falls back to the local model. ``local_busy`` is the local engine's
        queue (generating plus waiting); ``local_ready`` false while the local model
        still loads, when ``auto`` sends everything it may to the cloud.
        """
        decision = self._route(
            features,
            requested=requested,
            cloud_available=cloud_available,
            cloud_budget_left=cloud_budget_left,
            local_busy=local_busy,
            local_ready=local_ready,
        )
        if requested == "auto" and decision.route is Route.CLOUD:
            return replace(decision, fallback=Route.LOCAL)
        return decision

    def _route(
        self,
        features: PromptFeatures,
        *,
        requested: RequestedRoute,
        cloud_available: bool,
        cloud_budget_left: bool,
        local_busy: int,
        local_ready: bool,
    ) -> Decision:
        if requested == "local":
            return Decision(Route.LOCAL, Reason.FORCED_LOCAL)
        if requested == "cloud":
            return Decision(Route.CLOUD, Reason.FORCED_CLOUD)
        if not cloud_available:
            return Decision(Route.LOCAL, Reason.CLOUD_UNAVAILABLE)
        if not cloud_budget_left:
            return Decision(Route.LOCAL, Reason.BUDGET_EXHAUSTED)
        if not local_ready:
            return Decision(Route.CLOUD, Reason.LOCAL_LOADING)
        config = self.config
        if features.prompt_tokens >= config.local_n_ctx:
            return Decision(Route.CLOUD, Reason.CONTEXT_TOO_LONG)
        if config.local_overload_queue is not None and local_busy > config.local_overload_queue:
            return Decision(Route.CLOUD, Reason.LOCAL_OVERLOADED)
        if wants_cloud_for_structure(features, enabled=config.structured_to_cloud):
            return Decision(Route.CLOUD, Reason.STRUCTURED_OUTPUT)
        if features.prompt_tokens > config.auto_local_max_prompt_tokens:
            return Decision(Route.CLOUD, Reason.LONG_PROMPT)
        if features.max_tokens is not None and features.max_tokens > config.auto_local_max_tokens:
            return Decision(Route.CLOUD, Reason.LONG_OUTPUT)
        look = local_busy == 0 and features.prompt_tokens <= config.second_look_max_prompt_tokens
        return self._judge(features, look=look)

    @abstractmethod
    def _judge(self, features: PromptFeatures, *, look: bool) -> Decision:
        """Local or cloud by difficulty alone (every policy has passed). ``look``: a second
        look may be taken (the local model is idle, so it would not wait behind another
        request, and the prompt is short enough for its prefill to be worth waiting for)."""


class HeuristicRouter(_PolicyRouter):
    """The hand-written baseline: the first content flag that fires sends to the cloud."""

    def _judge(self, features: PromptFeatures, *, look: bool) -> Decision:
        if features.has_code:
            return Decision(Route.CLOUD, Reason.CODE)
        if features.has_math:
            return Decision(Route.CLOUD, Reason.MATH)
        if features.has_reasoning:
            return Decision(Route.CLOUD, Reason.REASONING)
        return Decision(Route.LOCAL, Reason.SIMPLE)


class Router(_PolicyRouter):
    """The learned router: pure, synchronous, no I/O once built (weights load in ``__init__``)."""

    def __init__(
        self,
        config: RouterConfig,
        model: RouterModel | None = None,
        token_head: TokenHead | None = None,
    ) -> None:
        """``model`` defaults to the bundled weights (read once, here). With ``token_head``
        a request whose features carry ``ask_tokens`` is scored by the blend of both
        (``table.blend``) against the head's threshold; without, by the features alone."""
        super().__init__(config)
        self.model: RouterModel = model if model is not None else load_model()
        self.token_head = token_head
        self.threshold = (
            config.cloud_threshold if config.cloud_threshold is not None else self.model.threshold
        )
        self.blend_threshold = self.threshold
        """The threshold of the blended score (the head's, unless the setting overrides)."""
        self.head_for: Path | None = None
        """The GGUF whose token head ``load_token_head`` should look for, if any."""
        self.prompt_head: PromptHead | None = None
        """The second look's head (``attach_prompt_head``); ``None``: no second look."""
        self.attach_token_head(token_head)

    @classmethod
    def from_settings(cls, settings: EdgeSettings, model_path: Path | None = None) -> Router:
        """The router an edge agent runs with: its limits and its weights file. With the
        bundled weights, the token-embedding head for the GGUF ``model_path`` (if it is
        the one they were fitted with) is attached later (``head_for``; the serving
        pipeline's ``load_token_head``): checking it takes a SHA-256 of the whole GGUF,
        which an edge does once its model has loaded rather than before its API listens;
        the head needs the loaded model's token ids anyway."""
        router = cls(RouterConfig.from_settings(settings), load_model(settings.router_model))
        if settings.router_model is None:
            router.head_for = model_path
        return router

    def attach_token_head(self, head: TokenHead | None) -> None:
        """Score with ``head`` from now on (``None``: features alone)."""
        if head is not None and self.config.cloud_threshold is None:
            self.blend_threshold = head.threshold
        else:
            self.blend_threshold = self.threshold
        self.token_head = head

    def attach_prompt_head(self, head: PromptHead | None) -> None:
        """Take second looks with ``head`` from now on (``None``, or the setting off: none),
        at the configured threshold where one is set."""
        if head is not None and self.config.second_look_threshold is not None:
            head = replace(head, threshold=self.config.second_look_threshold)
        self.prompt_head = head if self.config.second_look else None

    def score(self, features: PromptFeatures) -> float:
        """The learned probability that ``features`` needs the cloud model."""
        return self.model.probability(self.model.vector(features))

    def _judge(self, features: PromptFeatures, *, look: bool) -> Decision:
        x = self.model.vector(features)
        p = self.model.probability(x)
        threshold = self.threshold
        if self.token_head is not None and features.ask_tokens is not None:
            head = self.token_head.log_odds(
                features.ask_tokens, features.focus_tokens, features.focus_long
            )
            second = self.prompt_head
            if second is not None and look:
                # The model's own reading of the whole conversation replaces the
                # elaboration rule here: an easy follow-up after a long answer is easy.
                # And the first look reads a conversation's last ask alone as well,
                # keeping the lower score: the look still sees the history
                # (``history.py``).
                p, head = self._lower_for_last_ask(features, p, head)
                first = blend(p, head, elaboration=False)
                if first >= second.sure:
                    return Decision(Route.CLOUD, self._explain(features, x), p_cloud=first)
                pending = SecondLook(second, logit(p), head)
                return Decision(Route.LOCAL, Reason.SIMPLE, p_cloud=first, second_look=pending)
            p = blend(p, head, features.elaboration)
            threshold = self.blend_threshold
        if p >= threshold:
            return Decision(Route.CLOUD, self._explain(features, x), p_cloud=p)
        return Decision(Route.LOCAL, Reason.SIMPLE, p_cloud=p)

    def _lower_for_last_ask(
        self, features: PromptFeatures, p: float, head: float
    ) -> tuple[float, float]:
        """The features' probability and the token head's log-odds, each the lower of
        the conversation's and its last ask's alone (as ``router_lab.second`` fitted)."""
        alone = features.last_ask
        if alone is None or alone.ask_tokens is None or self.token_head is None:
            return p, head
        p_alone = self.model.probability(self.model.vector(alone))
        head_alone = self.token_head.log_odds(
            alone.ask_tokens, alone.focus_tokens, alone.focus_long
        )
        return min(p, p_alone), min(head, head_alone)

    def _explain(self, features: PromptFeatures, x: tuple[float, ...]) -> Reason:
        """Why an escalated prompt is hard, as a client can act on it.

        The content a prompt asks about comes first, most specific kind first
        (``_REASON_OF_FLAG``): the logistic model's weights cannot say it, because the
        word evidence has absorbed most of what the flags know (the code flag's weight
        came out near zero, so no code prompt was ever called ``code``). Without such
        content, the reason whose features pushed the logistic model hardest towards
        the cloud. Only features that are *present* speak there: above their training
        mean, with a positive weight. A feature below its mean with a negative weight
        also adds to the log-odds, but "the last sentence is short" is no reason to call
        a prompt a ``long-prompt``."""
        for flag, content in _REASON_OF_FLAG:
            if getattr(features, flag):
                return content
        if features.elaboration:  # the rule that sent it (model.ELABORATION_FLOOR)
            return Reason.REASONING
        totals: dict[Reason, float] = {}
        contributions = self.model.logistic.contributions(x)
        for name, contribution, value, mean in zip(
            FEATURE_NAMES, contributions, x, self.model.logistic.means, strict=True
        ):
            reason = _REASON_OF_FEATURE.get(name)
            if reason is not None and contribution > 0 and value > mean:
                totals[reason] = totals.get(reason, 0.0) + contribution
        if not totals:
            return Reason.HARD
        return max(totals, key=totals.__getitem__)
