"""Prometheus metrics of one signaling app.

Each app owns its ``CollectorRegistry`` instead of using prometheus_client's global
default, so that two apps in one process (tests, or a future multi-tenant server) never
share or double-register counters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from shared.messages import Role

__all__ = ["AUTH_FAILURE_REASONS", "CLOSE_REASONS", "OFFER_RESULTS", "SignalingMetrics"]

AUTH_FAILURE_REASONS = (
    "missing_token",
    "token_invalid",
    "token_expired",
    "unknown_key",
    "rate_limited",
)
OFFER_RESULTS = ("matched", "no_worker")
CLOSE_REASONS = ("token_expired", "peer_id_in_use")


class SignalingMetrics:
    """The counters and gauges ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Counter(
            "tandem_signaling_connections_total",
            "Authenticated WebSocket connections accepted, by role.",
            ["role"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "tandem_signaling_auth_failures_total",
            "Upgrade requests refused (401, or 429 when rate_limited), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.closes = Counter(
            "tandem_signaling_closes_total",
            "Connections signaling closed on purpose, by reason: the token expired, or the "
            "peer id was already held by a live connection.",
            ["reason"],
            registry=self.registry,
        )
        self.offers = Counter(
            "tandem_signaling_offers_total",
            "Offers from edges, by whether a worker was found.",
            ["result"],
            registry=self.registry,
        )
        self.relay_overflows = Counter(
            "tandem_signaling_relay_overflows_total",
            "Relayed sessions dropped because one member read too slowly "
            "(--relay-buffer-bytes waiting for it).",
            registry=self.registry,
        )
        self.peers = Gauge(
            "tandem_signaling_peers",
            "Peers connected now, by role.",
            ["role"],
            registry=self.registry,
        )
        # Create every label set up front so dashboards see zeros, not missing series.
        for role in Role:
            self.connections.labels(role=role.value)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason=reason)
        for close_reason in CLOSE_REASONS:
            self.closes.labels(reason=close_reason)
        for result in OFFER_RESULTS:
            self.offers.labels(result=result)

    def track_peers(self, count: Callable[[Role], int]) -> None:
        """Read the peers gauge from ``count`` at scrape time, so it can never drift."""
        for role in Role:
            self.peers.labels(role=role.value).set_function(partial(count, role))

    def render(self) -> bytes:
        """The text exposition format of every metric of this app."""
        return generate_latest(self.registry)
