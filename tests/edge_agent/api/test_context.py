"""``RequestContext``: the X-Tandem-* headers it puts on a response."""

from __future__ import annotations

from edge_agent.api.context import FAILOVERS_HEADER, RequestContext


def test_failovers_show_in_headers_once_counted() -> None:
    ctx = RequestContext(served_by="cloud", reason="forced-cloud", path="direct")
    assert FAILOVERS_HEADER not in ctx.headers()
    ctx.count_failover("cloud", 0)
    ctx.count_failover("local", 7)
    headers = ctx.headers()
    assert headers[FAILOVERS_HEADER] == "2"
    assert headers["X-Tandem-Served-By"] == "cloud" and headers["X-Tandem-Path"] == "direct"
