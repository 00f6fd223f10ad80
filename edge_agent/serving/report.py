"""``ServingReport``: what a client is told about who serves its request.

The pipeline fills one in as the request is routed and served; the HTTP layer turns it
into ``X-Tandem-*`` headers (on errors too: a 503 for an unreachable cloud still says it
was routed there, and why) and into the in-stream failover notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.engines.base import Failover
from edge_agent.router import Reason, Route

__all__ = ["ServingReport"]


@dataclass
class ServingReport:
    """Who serves the request and why, as known so far; owned by one request."""

    served_by: Route | None = None
    """Who serves the first token (``None`` until routed)."""
    reason: Reason | None = None
    path: str | None = None
    """The network path of a cloud-served response (``direct``, ``turn-udp``, ...)."""
    failovers: list[Failover] = field(default_factory=list)
    """Every move after a failure, in order (before the first token too)."""
    route: Route | None = None
    """The router's first decision (``served_by`` may differ after a failover)."""
    ttft_s: float | None = None
    """Seconds from the pipeline taking the request to its first token."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    """Token counts, known once the stream has ended (the access log and status page)."""
