"""Per-request state the handlers fill in and the middleware reports.

Handlers learn the serving engine and the route reason only after routing, but the
``X-Tandem-*`` headers and the request metric must be right for every response,
including errors raised later. So the outermost middleware creates one
``RequestContext`` per request, the serving pipeline fills in its ``ServingReport``,
and whoever builds the response (middleware for JSON, the stream writer for
SSE/NDJSON) copies its headers on.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from edge_agent.serving import ROUTE_HEADER, ServingReport

__all__ = [
    "CLIENT_CLOSED",
    "FAILOVERS_HEADER",
    "PATH_HEADER",
    "REQUEST_CONTEXT",
    "REQUEST_ID_HEADER",
    "ROUTE_HEADER",
    "ROUTE_REASON_HEADER",
    "SERVED_BY_HEADER",
    "RequestContext",
]

SERVED_BY_HEADER = "X-Tandem-Served-By"
ROUTE_REASON_HEADER = "X-Tandem-Route-Reason"
PATH_HEADER = "X-Tandem-Path"
FAILOVERS_HEADER = "X-Tandem-Failovers"
REQUEST_ID_HEADER = "X-Request-Id"

CLIENT_CLOSED = 499
"""Status recorded (never sent) when the client goes away mid-response; nginx's code."""


@dataclass
class RequestContext:
    """What is known about one HTTP request so far; owned by that request only."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))
    """Unix time of arrival: the ``created`` field of OpenAI responses."""
    started: float = field(default_factory=time.monotonic)
    """Monotonic time of arrival, for time-to-first-token."""
    report: ServingReport = field(default_factory=ServingReport)
    """Who serves and why, filled in by the serving pipeline. A non-streamed response
    carries its failover count as a header; a streamed one reports each failover as it
    happens (an SSE comment), its headers being long gone."""
    status: int | None = None
    """Outcome to record when it differs from the HTTP status already sent (a stream
    that failed or was abandoned after its 200 went out)."""

    def headers(self) -> dict[str, str]:
        """The ``X-Request-Id`` and, once routed, the ``X-Tandem-*`` headers."""
        headers = {REQUEST_ID_HEADER: self.request_id}
        report = self.report
        if report.served_by is not None:
            headers[SERVED_BY_HEADER] = report.served_by.value
        if report.reason is not None:
            headers[ROUTE_REASON_HEADER] = report.reason.value
        if report.path is not None:
            headers[PATH_HEADER] = report.path
        if report.failovers:
            headers[FAILOVERS_HEADER] = str(len(report.failovers))
        return headers

    @property
    def served_by(self) -> str:
        """The ``served_by`` label of the request metric (``none``: never routed)."""
        served_by = self.report.served_by
        return served_by.value if served_by is not None else "none"

    def apply(self, response: web.StreamResponse) -> None:
        """Copy ``headers()`` onto a response that has not been sent yet."""
        response.headers.update(self.headers())


REQUEST_CONTEXT = web.RequestKey("tandem_request_context", RequestContext)
