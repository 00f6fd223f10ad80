"""``create_app``: wires settings, registry, broker, metrics and routes into one app.

Everything an app needs hangs off the app itself (typed ``web.AppKey``s), so any number
of apps can live in one process, each with its own clock, registry and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from signaling.auth_limit import FailureLimiter
from signaling.broker import Broker
from signaling.handlers import (
    BROKER_KEY,
    CLOCK_KEY,
    LIMITER_KEY,
    METRICS_KEY,
    SETTINGS_KEY,
    healthz,
    metrics,
    signal,
)
from signaling.metrics import SignalingMetrics
from signaling.pending_offers import OfferTable
from signaling.registry.base import Registry
from signaling.registry.memory import MemoryRegistry
from signaling.relay_table import RelayTable
from signaling.settings import SignalingSettings

__all__ = ["create_app"]


async def _close_peers(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers to finish; closing the sockets
    # here is what lets Ctrl-C exit promptly instead of after the shutdown timeout.
    await app[BROKER_KEY].aclose()


def create_app(
    settings: SignalingSettings,
    *,
    registry: Registry | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the signaling app; ``ValueError`` if the shared secret is missing.

    ``clock`` (seconds since the epoch) is used for token expiry and offer timeouts, so
    tests can move time instead of sleeping.
    """
    settings.require_secret()  # fail at startup, not on the first peer that connects
    app_metrics = SignalingMetrics()
    broker = Broker(
        registry=registry if registry is not None else MemoryRegistry(),
        offers=OfferTable(timeout_s=settings.offer_timeout_s, clock=clock),
        metrics=app_metrics,
        relays=RelayTable(
            bytes_per_s=settings.relay_bytes_per_s,
            max_per_edge=settings.relay_max_sessions_per_edge,
        ),
        max_pending_offers_per_edge=settings.max_pending_offers_per_edge,
    )
    app_metrics.track_peers(broker.count)

    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[BROKER_KEY] = broker
    app[METRICS_KEY] = app_metrics
    app[CLOCK_KEY] = clock
    app[LIMITER_KEY] = FailureLimiter(
        max_failures=settings.auth_max_failures, window_s=settings.auth_window_s
    )
    app.router.add_get("/v1/signal", signal)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.on_shutdown.append(_close_peers)
    return app
