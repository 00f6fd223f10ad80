"""HTTP and WebSocket handlers: authenticate, upgrade, hand the socket to a ``PeerSocket``.

A peer proves who it is with ``Authorization: Bearer <token>`` on the upgrade request,
never a query string (URLs end up in access logs). Refusals happen before the upgrade,
as a 401 with an OpenAI-shaped error body, so that any HTTP client can read why
(``signaling.auth``).

Once upgraded, the connection leaves aiohttp for ``signaling.ws_peer``
(``signaling.ws_upgrade``; aiohttp's per-connection state alone was over the memory
budget of 10,000 idle peers), and every frame is binary msgpack (``shared.codec``),
handed to the ``Broker`` by ``signaling.peer_hub``. A peer that sends anything else is
closed with 1008 (policy violation); that closes its connection only. A connection
lives no longer than its token: at expiry it is closed with 4001, and the peer comes
back with a renewed token.
A second connection claiming a connected peer id takes it over at once if it presents
the holder's resume secret (``X-Tandem-Resume``, from the holder's ``Welcome``:
``signaling.resume``), else only if the holder no longer answers a ping.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from shared.messages import RESUME_HEADER, Role
from signaling.auth import authenticate
from signaling.keys import (
    BROKER_KEY,
    CLOCK_KEY,
    HUB_KEY,
    LIMITER_KEY,
    METRICS_KEY,
    SETTINGS_KEY,
)
from signaling.resume import new_secret, presented_digest
from signaling.ws_peer import PeerSocket
from signaling.ws_upgrade import check_upgrade, take_over

__all__ = [
    "BROKER_KEY",
    "CLOCK_KEY",
    "LIMITER_KEY",
    "METRICS_KEY",
    "SETTINGS_KEY",
    "healthz",
    "metrics",
    "signal",
]

logger = logging.getLogger(__name__)


async def signal(request: web.Request) -> web.StreamResponse:
    """``GET /v1/signal``: authenticate and upgrade; the peer then lives in a ``PeerSocket``.

    The handler returns at once, and aiohttp's state for the request is freed: the peer
    is attached to the broker and welcomed by a task of the app's ``PeerHub`` (not this
    handler's task, which aiohttp may cancel once it has let go of the connection)."""
    claims = authenticate(request)
    if isinstance(claims, web.Response):
        return claims
    key = check_upgrade(request)
    hub = request.app[HUB_KEY]
    peer = PeerSocket(hub, claims.peer_id, claims.role, claims.expires_at, new_secret())
    resume = presented_digest(request.headers.get(RESUME_HEADER))
    try:
        take_over(request, key, peer)
    except ConnectionResetError:
        pass  # the client has gone already
    else:
        hub.spawn(hub.admit(peer, request.remote, resume))
    return web.StreamResponse(status=101)  # for the access log: aiohttp writes nothing more


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: liveness plus how many peers of each role are connected here."""
    broker = request.app[BROKER_KEY]
    return web.json_response(
        {"status": "ok", "workers": broker.count(Role.WORKER), "edges": broker.count(Role.EDGE)}
    )


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: this app's Prometheus metrics in the text exposition format."""
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
