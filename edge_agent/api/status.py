"""``GET /status``: a page operators would rather look at than ``/metrics``.

The page is three static files shipped inside the package (``status_page/``: HTML, JS,
CSS; no build step, no CDN, so it works offline on a Pi). It polls ``/status.json``
every second and draws what it gets.

Authentication, decided as follows. The page itself (``/status``, its script and style)
holds no data and no secret, so it is served without the API key, like
``/openapi.json``. ``/status.json`` holds the data and is an API call like any other: it
needs ``Authorization: Bearer KEY`` when the agent has an ``--api-key``. The page asks
for the key once, keeps it in the tab's ``sessionStorage`` (gone when the tab closes,
never in a cookie, never in the URL) and sends it as that header. Every path here keeps
the browser guard (``browser.py``): a ``Host`` that does not name this agent gets 403,
so a DNS-rebound page can neither read ``/status.json`` nor see the key prompt, and a
strict Content-Security-Policy keeps the page to its own scripts and this origin.

``/status.json`` never carries a secret or a prompt: model names, the cloud's state and
path, worker ids, the day's budget and the recent requests' route, reason, tokens and
timings (``access_log.RecentRequests``).
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from edge_agent.api.access_log import RecentRequests, RequestRecord
from edge_agent.api.bodies import json_response
from edge_agent.serving import ServingPipeline

__all__ = [
    "STATUS_ASSETS",
    "STATUS_JSON_PATH",
    "STATUS_PAGE_PATH",
    "StatusDoc",
    "StatusRoutes",
]

STATUS_PAGE_PATH = "/status"
STATUS_JSON_PATH = "/status.json"
STATUS_ASSETS = {
    "/status/app.js": ("app.js", "text/javascript"),
    "/status/app.css": ("app.css", "text/css"),
}
"""Asset path -> (file in ``status_page/``, content type)."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Worker(BaseModel):
    worker_id: str
    path: str
    role: str


class Budget(BaseModel):
    """The day's cloud tokens (UTC day); ``limit`` null: no budget set."""

    day: str
    spent: int
    limit: int | None


class StatusDoc(BaseModel):
    """What ``/status.json`` answers: this agent's state and its recent requests."""

    now: float
    local_model: str
    local_ready: bool
    cloud: Literal["ready", "unavailable", "disabled"]
    cloud_model: str | None
    cloud_path: str | None
    workers: list[Worker]
    budget: Budget
    recent: list[RequestRecord]
    """Requests after ``?since=SEQ`` (all those kept when absent), oldest first."""
    recent_limit: int
    last_seq: int
    """The newest request's ``seq`` (0: none yet)."""


def _asset(name: str) -> bytes:
    return resources.files("edge_agent.api").joinpath("status_page", name).read_bytes()


class StatusRoutes:
    """``/status`` (the page and its assets) and ``/status.json`` (its data)."""

    def __init__(self, pipeline: ServingPipeline, recent: RecentRequests, *, size: int) -> None:
        self._pipeline = pipeline
        self._recent = recent
        self._size = size
        # Read once: the files ship inside the package and never change while running.
        self._page = _asset("index.html")
        self._assets = {path: (_asset(name), kind) for path, (name, kind) in STATUS_ASSETS.items()}

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(STATUS_PAGE_PATH, self.page)
        for path in STATUS_ASSETS:
            router.add_get(path, self.asset)
        router.add_get(STATUS_JSON_PATH, self.status)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page, content_type="text/html", charset="utf-8", headers=_SECURITY_HEADERS
        )

    async def asset(self, request: web.Request) -> web.Response:
        body, kind = self._assets[request.path]
        return web.Response(
            body=body, content_type=kind, charset="utf-8", headers=_SECURITY_HEADERS
        )

    async def status(self, request: web.Request) -> web.Response:
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            since = 0
        pipeline = self._pipeline
        local, cloud = pipeline.local, pipeline.cloud
        if cloud is None:
            state: Literal["ready", "unavailable", "disabled"] = "disabled"
        else:
            state = "ready" if cloud.ready else "unavailable"
        today = pipeline.clock.today()
        budget = pipeline.budget
        doc = StatusDoc(
            now=time.time(),
            local_model=local.model,
            local_ready=local.ready,
            cloud=state,
            cloud_model=cloud.model if cloud is not None else None,
            cloud_path=cloud.path if cloud is not None and state == "ready" else None,
            workers=[
                Worker(worker_id=w.worker_id, path=w.path, role=w.role)
                for w in (cloud.links() if cloud is not None else ())
            ],
            budget=Budget(
                day=today.isoformat(), spent=budget.spent(today), limit=budget.daily_tokens
            ),
            recent=self._recent.since(since),
            recent_limit=self._size,
            last_seq=self._recent.last_seq,
        )
        response = json_response(doc)
        response.headers.update(_SECURITY_HEADERS)
        return response
