"""What the edge tells systemd (``daemon.service``): ready once the local model is
loaded and the API listens; a status line with the model, the cloud path and the load."""

from __future__ import annotations

from aiohttp import web

from daemon.service import ServiceNotifications
from edge_agent.app import PARTS, EdgeParts
from edge_agent.settings import EdgeSettings

__all__ = ["notifications", "status_line"]


def status_line(parts: EdgeParts, settings: EdgeSettings) -> str:
    local = parts.local
    if not local.ready:
        return f"loading local model {local.model}"
    if parts.cloud is None:
        cloud = "cloud disabled (local only)"
    elif parts.cloud.ready:
        cloud = f"cloud {parts.cloud.model} via {parts.cloud.path or 'unknown path'}"
    elif parts.signaling is not None and parts.signaling.connected:
        cloud = "cloud: signaling connected, no worker linked"
    else:
        cloud = "cloud: signaling unreachable"
    return (
        f"serving {local.model} on http://{settings.host}:{settings.port}/v1; {cloud}; "
        f"{local.busy} local request(s) in flight"
    )


def notifications(app: web.Application, settings: EdgeSettings) -> ServiceNotifications:
    """Attach the edge's systemd notifications to ``app`` (inert outside systemd)."""
    parts = app[PARTS]
    service = ServiceNotifications(
        is_ready=lambda: parts.local.ready, status=lambda: status_line(parts, settings)
    )
    service.attach(app)
    return service
