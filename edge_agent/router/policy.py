"""Where a request runs: ``Router.decide(features) -> Decision``.

The policy is a fixed, ordered list of heuristics over ``PromptFeatures``; the first
that fires wins and names itself in ``Decision.reason``. Reasons are a small closed set
because they become the ``X-Tandem-Route-Reason`` header and a Prometheus label (an
open set would explode the metric's cardinality). A learned router will replace the
heuristics behind the same seam: features in, ``Decision`` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from edge_agent.router.features import PromptFeatures
from edge_agent.settings import EdgeSettings

__all__ = ["Decision", "Reason", "RequestedRoute", "Route", "Router", "RouterConfig"]

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
    CONTEXT_TOO_LONG = "context-too-long"
    LONG_PROMPT = "long-prompt"
    LONG_OUTPUT = "long-output"
    CODE = "code"
    MATH = "math"
    REASONING = "reasoning"
    SIMPLE = "simple"


@dataclass(frozen=True)
class Decision:
    """The router's verdict for one request."""

    route: Route
    reason: Reason


@dataclass(frozen=True)
class RouterConfig:
    """Thresholds of the ``auto`` route; every one is an edge setting."""

    auto_local_max_prompt_tokens: int = 400
    """Longer (estimated) prompts go to the cloud: the local model's quality and speed
    both fall off with length."""
    auto_local_max_tokens: int = 512
    """Requests asking for more output go to the cloud: long answers are slow on a Pi."""
    local_n_ctx: int = 2048
    """The local model's context window: prompts that cannot fit must go to the cloud."""

    def __post_init__(self) -> None:
        if min(self.auto_local_max_prompt_tokens, self.auto_local_max_tokens) < 0:
            raise ValueError("router thresholds must be >= 0")
        if self.local_n_ctx < 1:
            raise ValueError("local_n_ctx must be >= 1")

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> RouterConfig:
        """The thresholds an edge agent runs with."""
        return cls(
            auto_local_max_prompt_tokens=settings.auto_local_max_prompt_tokens,
            auto_local_max_tokens=settings.auto_local_max_tokens,
            local_n_ctx=settings.n_ctx,
        )


class Router:
    """Chooses local or cloud for each request; pure, synchronous, no I/O."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config

    def decide(
        self, features: PromptFeatures, *, requested: RequestedRoute, cloud_available: bool
    ) -> Decision:
        """The route for a request with ``features``.

        A forced route is honoured even when its engine cannot serve (the caller answers
        503 for an unreachable cloud: the client asked for it explicitly). ``auto`` never
        picks an unavailable cloud.
        """
        if requested == "local":
            return Decision(Route.LOCAL, Reason.FORCED_LOCAL)
        if requested == "cloud":
            return Decision(Route.CLOUD, Reason.FORCED_CLOUD)
        if not cloud_available:
            return Decision(Route.LOCAL, Reason.CLOUD_UNAVAILABLE)
        cloud_reason = self._cloud_reason(features)
        if cloud_reason is not None:
            return Decision(Route.CLOUD, cloud_reason)
        return Decision(Route.LOCAL, Reason.SIMPLE)

    def _cloud_reason(self, features: PromptFeatures) -> Reason | None:
        """The first heuristic saying "too hard for the local model", most certain first."""
        config = self.config
        if features.prompt_tokens >= config.local_n_ctx:
            return Reason.CONTEXT_TOO_LONG
        if features.prompt_tokens > config.auto_local_max_prompt_tokens:
            return Reason.LONG_PROMPT
        if features.max_tokens is not None and features.max_tokens > config.auto_local_max_tokens:
            return Reason.LONG_OUTPUT
        if features.has_code:
            return Reason.CODE
        if features.has_math:
            return Reason.MATH
        if features.has_reasoning:
            return Reason.REASONING
        return None
