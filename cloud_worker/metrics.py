"""The worker's Prometheus metrics, on a registry of its own (never the global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """Sessions by path, streams by outcome, load."""

    def __init__(self, active: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge(
            "tandem_worker_open_sessions",
            "Open edge sessions by network path.",
            ["path"],
            registry=self.registry,
        )
        self.sessions_total = Counter(
            "tandem_worker_sessions_total",
            "Edge sessions accepted, by path.",
            ["path"],
            registry=self.registry,
        )
        self.offers_total = Counter(
            "tandem_worker_offers_total",
            "Offers received, by result.",
            ["result"],
            registry=self.registry,
        )
        self.streams = Counter(
            "tandem_worker_streams",
            "Requests edges sent, by how they ended: completed, cancelled (the edge went "
            "away), handed-back (unfinished at the end of a drain), failed (generation "
            "error), refused (draining, overloaded, duplicate).",
            ["result"],
            registry=self.registry,
        )
        self.active = Gauge(
            "tandem_worker_active_streams", "Streams generating or waiting.", registry=self.registry
        )
        self.active.set_function(active)
        self.draining = Gauge(
            "tandem_worker_draining",
            "1 while this worker takes no new work (draining before preemption or shutdown, "
            "or paused while its engine is down), else 0.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
