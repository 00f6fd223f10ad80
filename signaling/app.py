"""``create_app``: wires settings, registry, broker, metrics and routes into one app.

Everything an app needs hangs off the app itself (typed ``web.AppKey``s), so any number
of apps can live in one process, each with its own clock, registry and metrics.

``/metrics`` tells whoever reads it how many peers there are and how authentication is
failing, so it is not served to the network by default: on the main listener only when
that is loopback; otherwise only on the ``--metrics-host`` listener (started and
stopped with the app). ``/healthz`` stays on the main listener for load balancers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from signaling.auth_limit import FailureLimiter
from signaling.broker import Broker
from signaling.handlers import healthz, metrics, signal
from signaling.keys import BROKER_KEY, CLOCK_KEY, HUB_KEY, LIMITER_KEY, METRICS_KEY, SETTINGS_KEY
from signaling.metrics import SignalingMetrics
from signaling.peer_hub import PeerHub
from signaling.pending_offers import OfferTable
from signaling.registry.base import Registry
from signaling.registry.memory import MemoryRegistry
from signaling.relay_table import RelayTable
from signaling.settings import SignalingSettings

if TYPE_CHECKING:
    from signaling.redis_cluster import RedisCluster

__all__ = ["METRICS_LISTENER_KEY", "MetricsListener", "create_app"]

logger = logging.getLogger(__name__)


class MetricsListener:
    """Where the separate ``/metrics`` listener is bound, once the app has started."""

    def __init__(self) -> None:
        self.addresses: list[tuple[str, int]] = []


METRICS_LISTENER_KEY = web.AppKey("metrics_listener", MetricsListener)


async def _close_peers(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers to finish; closing the sockets
    # here is what lets Ctrl-C exit promptly instead of after the shutdown timeout.
    await app[BROKER_KEY].aclose()
    await app[HUB_KEY].aclose()


async def _metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """Serve ``/metrics`` and ``/healthz`` on ``--metrics-host:--metrics-port``."""
    settings = app[SETTINGS_KEY]
    assert settings.metrics_host is not None
    side = web.Application()
    side[BROKER_KEY] = app[BROKER_KEY]
    side[METRICS_KEY] = app[METRICS_KEY]
    side.router.add_get("/healthz", healthz)
    side.router.add_get("/metrics", metrics)
    runner = web.AppRunner(side)
    await runner.setup()
    await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    listener = app[METRICS_LISTENER_KEY]
    listener.addresses = [(str(a[0]), int(a[1])) for a in runner.addresses]
    logger.info("metrics listening on %s", listener.addresses)
    try:
        yield
    finally:
        await runner.cleanup()


def _joined(
    cluster: RedisCluster, broker: Broker
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Join the cluster at startup (failing it if Redis is unreachable); leave at cleanup,
    after ``on_shutdown`` closed the peers (so their presence is released first)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from signaling.cluster_broker import ClusterBroker

        assert isinstance(broker, ClusterBroker)
        await cluster.start(broker)
        try:
            yield
        finally:
            await cluster.aclose()

    return ctx


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
    common = {
        "offers": OfferTable(timeout_s=settings.offer_timeout_s, clock=clock),
        "metrics": app_metrics,
        "relays": RelayTable(
            bytes_per_s=settings.relay_bytes_per_s,
            max_per_edge=settings.relay_max_sessions_per_edge,
            buffer_bytes=settings.relay_buffer_bytes,
        ),
        "takeover_probe_s": settings.takeover_probe_s,
        "max_model_name_chars": settings.max_model_name_chars,
        "max_pending_offers_per_edge": settings.max_pending_offers_per_edge,
    }
    limiter: FailureLimiter
    cluster: RedisCluster | None = None
    broker: Broker
    if settings.redis_url is not None:
        # Imported here: the redis client costs ~7 MB of RSS that one instance never uses.
        from signaling.cluster_broker import ClusterBroker
        from signaling.redis_cluster import RedisCluster
        from signaling.shared_limits import SharedFailureLimiter

        cluster = RedisCluster(
            settings.redis_url,
            prefix=settings.redis_prefix,
            presence_ttl_s=settings.redis_presence_ttl_s,
            max_frame_bytes=settings.max_frame_bytes,
        )
        broker = ClusterBroker(
            cluster=cluster,
            registry=cluster.registry,
            offer_timeout_s=settings.offer_timeout_s,
            relay_bytes_per_s=settings.relay_bytes_per_s,
            **common,
        )
        limiter = SharedFailureLimiter(
            cluster, max_failures=settings.auth_max_failures, window_s=settings.auth_window_s
        )
    else:
        broker = Broker(
            registry=registry if registry is not None else MemoryRegistry(),
            **common,  # type: ignore[arg-type]
        )
        limiter = FailureLimiter(
            max_failures=settings.auth_max_failures, window_s=settings.auth_window_s
        )
    app_metrics.track_peers(broker.count)

    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[BROKER_KEY] = broker
    app[METRICS_KEY] = app_metrics
    app[CLOCK_KEY] = clock
    app[LIMITER_KEY] = limiter
    app[HUB_KEY] = PeerHub(settings=settings, broker=broker, metrics=app_metrics, clock=clock)
    app[METRICS_LISTENER_KEY] = MetricsListener()
    app.router.add_get("/v1/signal", signal)
    app.router.add_get("/healthz", healthz)
    if settings.metrics_on_main:
        app.router.add_get("/metrics", metrics)
    if cluster is not None:
        app.cleanup_ctx.append(_joined(cluster, broker))
    if settings.metrics_host is not None:
        app.cleanup_ctx.append(_metrics_listener)
    app.on_shutdown.append(_close_peers)
    return app
