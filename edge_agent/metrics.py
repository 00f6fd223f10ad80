"""The edge agent's Prometheus metrics, on a registry of its own.

Each ``EdgeMetrics`` owns its ``CollectorRegistry`` instead of using prometheus_client's
global one: two apps in one process (every test module does this) would otherwise
collide on metric names, and ``/metrics`` shows exactly this agent's series.

The HTTP layer drives the request, route, token and time-to-first-token series; the peer
pool drives ``cloud_channels`` and ``cloud_connects``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

__all__ = ["METRICS_CONTENT_TYPE", "EdgeMetrics"]

METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format every Prometheus scrapes (``render`` emits it)."""

TTFT_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""From a warm local model (tens of ms) to a cold cloud path (a handshake, seconds)."""


class EdgeMetrics:
    """Every series the edge agent exports; attributes are the prometheus_client objects."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tandem_edge_requests",
            "HTTP requests answered, by endpoint, serving engine and HTTP status "
            "(499: the client went away).",
            ["endpoint", "served_by", "status"],
            registry=self.registry,
        )
        self.route_decisions = Counter(
            "tandem_edge_route_decisions",
            "Router decisions, by route and reason; an auto request whose cloud stream fails "
            "before its first token counts again as (local, cloud-unavailable).",
            ["route", "reason"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "tandem_edge_tokens",
            "Tokens processed, by serving engine and kind (prompt|completion).",
            ["served_by", "kind"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "tandem_edge_time_to_first_token_seconds",
            "Seconds from a request's arrival to its first generated token.",
            ["served_by"],
            buckets=TTFT_BUCKETS_S,
            registry=self.registry,
        )
        self.second_look = Histogram(
            "tandem_edge_second_look_seconds",
            "Seconds from a request's arrival to the router's second look (after the local "
            "prefill), by the route it chose: for cloud, the delay the look added.",
            ["route"],
            buckets=TTFT_BUCKETS_S,
            registry=self.registry,
        )
        self.cloud_channels = Gauge(
            "tandem_edge_cloud_channels",
            "Open links to cloud workers, by path (direct|turn-udp|turn-tcp|relay|unknown).",
            ["path"],
            registry=self.registry,
        )
        self.cloud_standby = Gauge(
            "tandem_edge_cloud_standby",
            "1 while a warm standby link to a second worker is open (a failover to it "
            "needs no handshake), else 0.",
            registry=self.registry,
        )
        self.cloud_connects = Counter(
            "tandem_edge_cloud_connects",
            "Attempts to open a link to a cloud worker, by result: the path it opened on, "
            "or failed.",
            ["result"],
            registry=self.registry,
        )

        self.failovers = Counter(
            "tandem_edge_failovers",
            "Cloud streams resumed after their worker failed, by where they resumed "
            "(cloud = another worker, local = this device).",
            ["to"],
            registry=self.registry,
        )

        self.cloud_budget_tokens = Gauge(
            "tandem_edge_cloud_budget_tokens",
            "The daily cloud token budget (--cloud-daily-token-budget); 0 when unlimited.",
            registry=self.registry,
        )
        self.cloud_budget_spent_tokens = Gauge(
            "tandem_edge_cloud_budget_spent_tokens",
            "Cloud tokens (prompt + completion) spent today (UTC day).",
            registry=self.registry,
        )

        self.cloud_workers = Gauge(
            "tandem_edge_cloud_workers",
            "Cloud workers this edge holds a usable link to now (primary and warm standby); "
            "exported only by an edge with a cloud configured.",
            registry=None,
        )
        self._cloud_tracked = False

    def track_cloud(self, workers: Callable[[], float]) -> None:
        """Export ``cloud_workers``, read at scrape time; only an edge with a cloud calls
        this, so that an alert on 0 never fires for an edge meant to run alone."""
        self.cloud_workers.set_function(workers)
        if not self._cloud_tracked:
            self.registry.register(self.cloud_workers)
            self._cloud_tracked = True

    def track_budget(self, *, spent: Callable[[], float], limit: int | None) -> None:
        """Read today's spend at scrape time (it can never drift from the budget's count)."""
        self.cloud_budget_spent_tokens.set_function(spent)
        self.cloud_budget_tokens.set(limit or 0)

    def render(self) -> bytes:
        """The registry in Prometheus text format (``METRICS_CONTENT_TYPE``)."""
        return generate_latest(self.registry)
