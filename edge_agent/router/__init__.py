"""Local or cloud? Pure, synchronous routing: request -> ``PromptFeatures`` -> ``Decision``."""

from edge_agent.router.features import PromptFeatures, estimate_tokens, extract_features
from edge_agent.router.model import RouterModel, load_model
from edge_agent.router.policy import (
    Decision,
    HeuristicRouter,
    Reason,
    RequestedRoute,
    Route,
    Router,
    RouterConfig,
)

__all__ = [
    "Decision",
    "HeuristicRouter",
    "PromptFeatures",
    "Reason",
    "RequestedRoute",
    "Route",
    "Router",
    "RouterConfig",
    "RouterModel",
    "estimate_tokens",
    "extract_features",
    "load_model",
]
