"""HTTP and WebSocket handlers: authenticate, decode, hand messages to the ``Broker``.

A peer proves who it is with ``Authorization: Bearer <token>`` on the upgrade request,
never a query string (URLs end up in access logs). Refusals happen before the upgrade,
as a 401 with an OpenAI-shaped error body, so that any HTTP client can read why.

Once upgraded, every frame is binary msgpack (``shared.codec``). A peer that sends
anything else is closed with 1008 (policy violation); that closes its connection only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST

from shared.codec import decode, encode
from shared.errors import AuthError, ProtocolError, TokenExpired
from shared.messages import ErrorCode, Message, Role, SignalError, Welcome
from shared.tokens import PeerClaims, verify_token
from signaling.auth_limit import FailureLimiter
from signaling.broker import Broker
from signaling.metrics import SignalingMetrics
from signaling.settings import SignalingSettings
from signaling.turn_credentials import ice_servers

__all__ = [
    "BROKER_KEY",
    "CLOCK_KEY",
    "LIMITER_KEY",
    "METRICS_KEY",
    "SETTINGS_KEY",
    "WebSocketConnection",
    "healthz",
    "metrics",
    "signal",
]

logger = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("settings", SignalingSettings)
BROKER_KEY = web.AppKey("broker", Broker)
METRICS_KEY = web.AppKey("metrics", SignalingMetrics)
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("clock")
LIMITER_KEY = web.AppKey("auth_limiter", FailureLimiter)

CLOSE_POLICY_VIOLATION = 1008


class WebSocketConnection:
    """A ``broker.PeerConnection`` over an aiohttp server WebSocket."""

    def __init__(self, peer_id: str, role: Role, ws: web.WebSocketResponse) -> None:
        self.peer_id = peer_id
        self.role = role
        self._ws = ws

    async def send(self, message: Message) -> bool:
        if self._ws.closed:
            return False
        try:
            await self._ws.send_bytes(encode(message))
        except ConnectionError:  # the transport closed under us: the peer is gone
            return False
        return True

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode()[:123])


def _unauthorized(code: str, message: str) -> web.Response:
    body = {
        "error": {"message": message, "type": "authentication_error", "param": None, "code": code}
    }
    return web.json_response(body, status=401, headers={"WWW-Authenticate": "Bearer"})


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _authenticate(request: web.Request) -> PeerClaims | web.Response:
    """The token's claims, or the 401 (429 after repeated failures) to send instead."""
    metrics_ = request.app[METRICS_KEY]
    limiter = request.app[LIMITER_KEY]
    source = request.remote or "unknown"
    now = request.app[CLOCK_KEY]()
    wait_s = limiter.blocked_for(source, now)
    if wait_s > 0:
        metrics_.auth_failures.labels(reason="rate_limited").inc()
        body = {
            "error": {
                "message": "too many failed authentications from this address; retry later",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limited",
            }
        }
        return web.json_response(body, status=429, headers={"Retry-After": str(int(wait_s) + 1)})
    token = _bearer_token(request)
    if token is None:
        reason, text = "missing_token", "missing bearer token in the Authorization header"
    else:
        secret = request.app[SETTINGS_KEY].require_secret()
        try:
            return verify_token(secret, token, now=request.app[CLOCK_KEY]())
        except TokenExpired:
            reason, text = "token_expired", "token has expired"
        except AuthError:
            reason, text = "token_invalid", "token is malformed or its signature is wrong"
    metrics_.auth_failures.labels(reason=reason).inc()
    limiter.failed(source, now)
    logger.info("refused connection from %s: %s", request.remote, reason)
    return _unauthorized(reason, text)


def _welcome(settings: SignalingSettings, claims: PeerClaims, now: float) -> Welcome:
    secret = settings.turn_secret.get_secret_value() if settings.turn_secret else None
    servers = ice_servers(
        stun_urls=settings.stun_urls,
        turn_urls=settings.turn_urls,
        turn_secret=secret,
        peer_id=claims.peer_id,
        now=now,
        ttl_s=settings.turn_ttl_s,
    )
    return Welcome(peer_id=claims.peer_id, role=claims.role, ice_servers=servers)


async def _refresh_ice(
    conn: WebSocketConnection,
    settings: SignalingSettings,
    claims: PeerClaims,
    clock: Callable[[], float],
) -> None:
    """TURN credentials expire; a peer connected for days must still hold valid ones."""
    while True:
        await asyncio.sleep(settings.turn_ttl_s / 2)
        if not await conn.send(_welcome(settings, claims, clock())):
            return


async def signal(request: web.Request) -> web.StreamResponse:
    """``GET /v1/signal``: one authenticated peer's WebSocket, for its whole life."""
    claims = _authenticate(request)
    if isinstance(claims, web.Response):
        return claims
    settings = request.app[SETTINGS_KEY]
    broker = request.app[BROKER_KEY]
    # aiohttp refuses frames over max_msg_size itself (close 1009, message too big), so
    # a peer can never make us buffer more than one allowed frame.
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s, max_msg_size=settings.max_frame_bytes
    )
    await ws.prepare(request)
    conn = WebSocketConnection(claims.peer_id, claims.role, ws)
    request.app[METRICS_KEY].connections.labels(role=claims.role.value).inc()
    await broker.attach(conn)
    clock = request.app[CLOCK_KEY]
    refresh: asyncio.Task[None] | None = None
    try:
        await conn.send(_welcome(settings, claims, clock()))
        if settings.turn_urls:
            refresh = asyncio.get_running_loop().create_task(
                _refresh_ice(conn, settings, claims, clock), name=f"ice-refresh-{claims.peer_id}"
            )
        await _serve_peer(conn, ws, broker, settings.max_frame_bytes)
    finally:
        if refresh is not None:
            refresh.cancel()
            await asyncio.gather(refresh, return_exceptions=True)
        await broker.detach(conn)
    return ws


async def _serve_peer(
    conn: WebSocketConnection, ws: web.WebSocketResponse, broker: Broker, max_frame_bytes: int
) -> None:
    async for frame in ws:
        if frame.type is WSMsgType.TEXT:
            await _violation(conn, "binary frames only")
            return
        if frame.type is not WSMsgType.BINARY:
            return  # ERROR (e.g. frame too large): aiohttp has already closed the socket
        try:
            message = decode(frame.data, max_frame_bytes=max_frame_bytes)
        except ProtocolError as exc:
            await _violation(conn, f"undecodable frame ({type(exc).__name__})")
            return
        try:
            await broker.handle(conn, message)
        except Exception:  # top of this peer's task: log, tell the peer, keep serving it
            logger.exception(
                "%s %s: failed to handle %s", conn.role.value, conn.peer_id, message.type_tag
            )
            await conn.send(SignalError(code=ErrorCode.INTERNAL, message="internal error"))


async def _violation(conn: WebSocketConnection, reason: str) -> None:
    logger.info("closing %s %s: %s", conn.role.value, conn.peer_id, reason)
    await conn.close(CLOSE_POLICY_VIOLATION, reason)


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
