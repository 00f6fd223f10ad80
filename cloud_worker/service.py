"""What the worker tells systemd (``daemon.service``): ready once its backend is loaded
and it is registered with signaling (its ``Register`` went out on a welcomed
connection); a status line with the model, the signaling link and the load."""

from __future__ import annotations

from aiohttp import web

from cloud_worker.app import PARTS, WorkerParts
from daemon.service import ServiceNotifications

__all__ = ["notifications", "status_line"]


def is_ready(parts: WorkerParts) -> bool:
    return parts.backend.ready and parts.signaling.connected


def status_line(parts: WorkerParts) -> str:
    backend, signaling = parts.backend, parts.signaling
    models = ", ".join(backend.models) or "the model"
    if backend.state == "loading":
        return f"loading {models}"
    if signaling.connected:
        link = f"registered with signaling as {signaling.peer_id}"
    else:
        error = f" ({signaling.last_error})" if signaling.last_error else ""
        link = f"signaling unreachable{error}"
    if parts.acceptor.draining:
        state = "draining"
    elif backend.state == "down":
        state = "engine down"
    else:
        state = "serving" if signaling.connected else "not registered"
    return (
        f"{state}: {models}; {link}; {parts.acceptor.sessions} edge session(s); "
        f"{backend.active}/{backend.capacity} stream(s) active"
    )


def notifications(app: web.Application) -> ServiceNotifications:
    """Attach the worker's systemd notifications to ``app`` (inert outside systemd)."""
    parts = app[PARTS]
    service = ServiceNotifications(
        is_ready=lambda: is_ready(parts), status=lambda: status_line(parts)
    )
    service.attach(app)
    return service
