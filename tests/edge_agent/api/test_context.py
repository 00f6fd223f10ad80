"""``RequestContext``: the X-Tandem-* headers it puts on a response."""

from __future__ import annotations

from edge_agent.api.context import FAILOVERS_HEADER, RequestContext
from edge_agent.router import Reason, Route
from edge_agent.serving import Failover, ServingReport


def test_headers_say_what_the_report_says_failovers_once_counted() -> None:
    report = ServingReport(Route.CLOUD, Reason.FORCED_CLOUD, "direct")
    ctx = RequestContext(report=report)
    assert FAILOVERS_HEADER not in ctx.headers()
    report.failovers.append(Failover(Route.CLOUD, 0, "TransportClosed"))
    report.failovers.append(Failover(Route.LOCAL, 7, "NoPeerAvailable"))
    headers = ctx.headers()
    assert headers[FAILOVERS_HEADER] == "2"
    assert headers["X-Tandem-Served-By"] == "cloud" and headers["X-Tandem-Path"] == "direct"
    assert headers["X-Tandem-Route-Reason"] == "forced-cloud"
    assert headers["X-Request-Id"] == ctx.request_id


def test_an_unrouted_request_says_only_its_id() -> None:
    ctx = RequestContext()
    assert set(ctx.headers()) == {"X-Request-Id"}
    assert ctx.served_by == "none"
