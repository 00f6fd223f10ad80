"""What signaling tells systemd (``daemon.service``): ready once it listens; a status
line with how many workers and edges are connected."""

from __future__ import annotations

from aiohttp import web

from daemon.service import ServiceNotifications
from shared.messages import Role
from signaling.keys import BROKER_KEY

__all__ = ["notifications"]


def notifications(app: web.Application, url: str) -> ServiceNotifications:
    """Attach signaling's systemd notifications to ``app`` (inert outside systemd)."""
    broker = app[BROKER_KEY]

    def status() -> str:
        workers, edges = broker.count(Role.WORKER), broker.count(Role.EDGE)
        return f"listening on {url}; {workers} worker(s), {edges} edge(s) connected"

    service = ServiceNotifications(is_ready=lambda: True, status=status)
    service.attach(app)
    return service
