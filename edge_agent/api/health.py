"""Operational endpoints: ``/healthz`` for supervisors, ``/metrics`` for Prometheus.

``/healthz`` answers 503 until the local model is loaded, so that systemd, a load
balancer or a test can wait for readiness instead of guessing; the cloud is reported but
never makes the agent unhealthy, because the agent still answers locally without it.
The 503 says where the cloud stands too: escalated requests are served while the local
model loads (the cloud link opens at once, over the relay at first).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from edge_agent.api.bodies import json_response
from edge_agent.engines.base import Engine
from edge_agent.engines.local import LocalEngine
from edge_agent.metrics import METRICS_CONTENT_TYPE, EdgeMetrics

__all__ = ["Health", "HealthRoutes", "Loading"]


class Loading(BaseModel):
    status: Literal["loading"] = "loading"
    cloud: Literal["ready", "unavailable", "disabled"] = "disabled"
    """The cloud needs no local model: escalated requests are served while it loads."""
    cloud_path: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    local_model: str
    cloud: Literal["ready", "unavailable", "disabled"]
    cloud_path: str | None = None
    """The live cloud link's path (direct, turn-udp, turn-tcp, relay; unknown if aiortc would
    not say); null without one."""


class HealthRoutes:
    """``/healthz`` and ``/metrics``."""

    def __init__(self, *, local: LocalEngine, cloud: Engine | None, metrics: EdgeMetrics) -> None:
        self._local = local
        self._cloud = cloud
        self._metrics = metrics

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/healthz", self.healthz)
        router.add_get("/metrics", self.metrics)

    async def healthz(self, request: web.Request) -> web.Response:
        if self._cloud is None:
            cloud: Literal["ready", "unavailable", "disabled"] = "disabled"
        else:
            cloud = "ready" if self._cloud.ready else "unavailable"
        path = self._cloud.path if self._cloud is not None and cloud == "ready" else None
        if not self._local.ready:
            return json_response(Loading(cloud=cloud, cloud_path=path), status=503)
        return json_response(Health(local_model=self._local.model, cloud=cloud, cloud_path=path))

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )
