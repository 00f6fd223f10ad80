"""Local or cloud? Pure, synchronous routing: request -> ``PromptFeatures`` -> ``Decision``."""

from edge_agent.router.features import PromptFeatures, estimate_tokens, extract_features
from edge_agent.router.policy import Decision, Reason, RequestedRoute, Route, Router, RouterConfig

__all__ = [
    "Decision",
    "PromptFeatures",
    "Reason",
    "RequestedRoute",
    "Route",
    "Router",
    "RouterConfig",
    "estimate_tokens",
    "extract_features",
]
