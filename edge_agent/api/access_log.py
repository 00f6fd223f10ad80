"""One log line per HTTP request, and the ring of recent requests ``/status`` shows.

The line is written once the response is complete (a stream's last byte, an error, or
the client going away), by a middleware outside every other one, so that it sees the
final status, the route and reason the serving pipeline settled on, the tokens and the
time to first token. It carries what an operator needs to follow a request (its
``X-Request-Id``) and nothing a client sent: never the prompt, a header, or a query
string (the API key travels in ``Authorization``; nothing here reads it).

API requests log at INFO; the operational endpoints (``/healthz``, ``/metrics``,
``/status``: probes, scrapes and the status page poll every few seconds) at DEBUG, so
that they do not drown the requests that matter.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from edge_agent.api.context import CLIENT_CLOSED, REQUEST_CONTEXT, RequestContext
from shared.logs import log_event

__all__ = ["OPERATIONAL_PREFIXES", "RecentRequests", "RequestRecord", "access_log_middleware"]

log = logging.getLogger("edge_agent.access")

OPERATIONAL_PREFIXES = ("/healthz", "/metrics", "/status", "/openapi.json")
"""Paths logged at DEBUG and kept out of the recent-requests ring."""


@dataclass(frozen=True)
class RequestRecord:
    """One finished request, as the log line and the status page show it."""

    seq: int
    """Increases by one per record: the status page asks for what came after it."""
    at: float
    """Unix time the request arrived."""
    request_id: str
    method: str
    endpoint: str
    """The route template (``/v1/chat/completions``), never the raw path."""
    status: int
    route: str | None
    reason: str | None
    served_by: str | None
    path: str | None
    failovers: int
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    total_ms: float

    def fields(self) -> dict[str, Any]:
        """The log line's fields (``seq`` and ``at`` are the ring's, not the line's)."""
        fields = asdict(self)
        del fields["seq"], fields["at"]
        return fields


class RecentRequests:
    """The last ``size`` API requests, in memory only (a restart forgets them)."""

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)

    @property
    def last_seq(self) -> int:
        """The newest record's ``seq`` (0: none yet); lower than a client's last one
        means the agent restarted."""
        return self._records[-1].seq if self._records else 0

    def since(self, seq: int) -> list[RequestRecord]:
        """Records newer than ``seq``, oldest first (0: all that are kept)."""
        return [r for r in self._records if r.seq > seq]


def _endpoint(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def access_log_middleware(recent: RecentRequests) -> Middleware:
    """Log each request once it is over; keep API requests in ``recent``."""

    @web.middleware
    async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.time()
        status = 500
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        except web.HTTPException as exc:  # redirects; errors are responses by now
            status = exc.status
            raise
        else:
            ctx = request.get(REQUEST_CONTEXT)
            status = (ctx.status if ctx is not None else None) or response.status
            return response
        finally:
            _record(request, recent, status, arrived)

    return access_log


def _record(request: web.Request, recent: RecentRequests, status: int, arrived: float) -> None:
    ctx = request.get(REQUEST_CONTEXT) or RequestContext()
    operational = request.path.startswith(OPERATIONAL_PREFIXES)
    report = ctx.report
    record = RequestRecord(
        seq=0 if operational else recent.next_seq(),
        at=arrived,
        request_id=ctx.request_id,
        method=request.method,
        endpoint=_endpoint(request),
        status=status,
        route=report.route.value if report.route is not None else None,
        reason=report.reason.value if report.reason is not None else None,
        served_by=report.served_by.value if report.served_by is not None else None,
        path=report.path,
        failovers=len(report.failovers),
        prompt_tokens=report.prompt_tokens,
        completion_tokens=report.completion_tokens,
        ttft_ms=_ms(report.ttft_s),
        total_ms=_ms(time.monotonic() - ctx.started) or 0.0,
    )
    level = logging.DEBUG if operational else logging.INFO
    log_event(log, level, "request", **record.fields())
    if not operational and request.method == hdrs.METH_POST:
        recent.add(record)
