"""HTTP and WebSocket handlers: authenticate, decode, hand messages to the ``Broker``.

A peer proves who it is with ``Authorization: Bearer <token>`` on the upgrade request,
never a query string (URLs end up in access logs). Refusals happen before the upgrade,
as a 401 with an OpenAI-shaped error body, so that any HTTP client can read why
(``signaling.auth``).

Once upgraded, every frame is binary msgpack (``shared.codec``). A peer that sends
anything else is closed with 1008 (policy violation); that closes its connection only.
A connection lives no longer than its token: at expiry it is closed with 4001, and the
peer comes back with a renewed token. Pings are answered here rather than by aiohttp so
that a pong is seen: the broker pings a connected peer to learn whether it is alive when
a second connection claims its id, unless the newcomer presents the holder's resume
secret (``X-Tandem-Resume``, from the holder's ``Welcome``: ``signaling.resume``).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST

from shared.close_codes import CloseCode
from shared.codec import decode, encode
from shared.errors import ProtocolError
from shared.messages import RESUME_HEADER, ErrorCode, Message, Role, SignalError, Welcome
from shared.tokens import PeerClaims
from signaling.auth import authenticate
from signaling.broker import Broker
from signaling.keys import BROKER_KEY, CLOCK_KEY, LIMITER_KEY, METRICS_KEY, SETTINGS_KEY
from signaling.peer_timers import PeerTimers
from signaling.resume import digest, new_secret, presented_digest, same
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

CLOSE_POLICY_VIOLATION = CloseCode.POLICY_VIOLATION


class WebSocketConnection:
    """A ``broker.PeerConnection`` over an aiohttp server WebSocket."""

    def __init__(
        self, peer_id: str, role: Role, ws: web.WebSocketResponse, resume_secret: str
    ) -> None:
        self.peer_id = peer_id
        self.role = role
        self._ws = ws
        self._heard = asyncio.Event()
        self.resume_secret = resume_secret
        """Sent to this peer in every ``Welcome``; never logged."""
        self._resume_digest = digest(resume_secret)

    def __repr__(self) -> str:  # never the secret
        return f"<WebSocketConnection {self.role.value} {self.peer_id}>"

    def resumed_by(self, presented: bytes | None) -> bool:
        return same(self._resume_digest, presented)

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

    def heard(self) -> None:
        """Something arrived from the peer (a pong, a frame): it is alive."""
        self._heard.set()

    async def alive(self, timeout_s: float) -> bool:
        """Ping the peer: whether anything comes back from it within ``timeout_s``."""
        if self._ws.closed:
            return False
        self._heard.clear()
        try:
            await self._ws.ping()
            async with asyncio.timeout(timeout_s):
                await self._heard.wait()
        except (ConnectionError, RuntimeError, TimeoutError):
            return False
        return not self._ws.closed


def _welcome(settings: SignalingSettings, claims: PeerClaims, now: float, resume: str) -> Welcome:
    secret = settings.turn_secret.get_secret_value() if settings.turn_secret else None
    servers = ice_servers(
        stun_urls=settings.stun_urls,
        turn_urls=settings.turn_urls,
        turn_secret=secret,
        peer_id=claims.peer_id,
        now=now,
        ttl_s=settings.turn_ttl_s,
    )
    return Welcome(peer_id=claims.peer_id, role=claims.role, ice_servers=servers, resume=resume)


def _peer_timers(conn: WebSocketConnection, request: web.Request, claims: PeerClaims) -> PeerTimers:
    """Close ``conn`` when its token expires (a token must not outlive its ``exp`` by
    keeping a socket open, and minting TURN credentials on it); with TURN, push fresh
    credentials at half their lifetime (a peer connected for days must still hold valid
    ones). On timers, not a task per peer (``signaling.peer_timers``)."""
    settings, clock = request.app[SETTINGS_KEY], request.app[CLOCK_KEY]

    async def expire() -> None:
        logger.info("closing %s %s: its token expired", conn.role.value, conn.peer_id)
        request.app[METRICS_KEY].closes.labels(reason="token_expired").inc()
        await conn.close(CloseCode.TOKEN_EXPIRED, "token expired: reconnect with a renewed token")

    async def refresh() -> bool:
        return await conn.send(_welcome(settings, claims, clock(), conn.resume_secret))

    return PeerTimers(
        clock=clock,
        expires_at=claims.expires_at,
        check_s=settings.expiry_check_s,
        on_expiry=expire,
        refresh_s=settings.turn_ttl_s / 2 if settings.turn_urls else None,
        on_refresh=refresh,
    )


async def signal(request: web.Request) -> web.StreamResponse:
    """``GET /v1/signal``: one authenticated peer's WebSocket, for its whole life."""
    claims = authenticate(request)
    if isinstance(claims, web.Response):
        return claims
    settings = request.app[SETTINGS_KEY]
    broker = request.app[BROKER_KEY]
    # aiohttp refuses frames over max_msg_size itself (close 1009, message too big), so
    # a peer can never make us buffer more than one allowed frame.
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s, max_msg_size=settings.max_frame_bytes, autoping=False
    )
    await ws.prepare(request)
    conn = WebSocketConnection(claims.peer_id, claims.role, ws, new_secret())
    resume = presented_digest(request.headers.get(RESUME_HEADER))
    if not await broker.attach(conn, resume):
        await _refuse_duplicate(request, conn)
        return ws
    request.app[METRICS_KEY].connections.labels(role=claims.role.value).inc()
    clock = request.app[CLOCK_KEY]
    timers = _peer_timers(conn, request, claims)
    try:
        await conn.send(_welcome(settings, claims, clock(), conn.resume_secret))
        await _serve_peer(conn, ws, broker, settings.max_frame_bytes)
    finally:
        # Detach before awaiting anything else: the handler may itself be cancelled
        # (the client went away), and a peer must never stay listed after its socket.
        timers.stop()
        await broker.detach(conn)
        await timers.wait()
    return ws


async def _refuse_duplicate(request: web.Request, conn: WebSocketConnection) -> None:
    """Two devices presenting one peer id: the live one keeps it, the newcomer is told."""
    logger.warning(
        "refused a second %s connection as %s from %s: that peer id is held by a live "
        "connection (two devices sharing one token?)",
        conn.role.value,
        conn.peer_id,
        request.remote,
    )
    request.app[METRICS_KEY].closes.labels(reason="peer_id_in_use").inc()
    await conn.close(
        CloseCode.PEER_ID_IN_USE, f"peer id {conn.peer_id[:64]} is connected elsewhere"
    )


async def _serve_peer(
    conn: WebSocketConnection, ws: web.WebSocketResponse, broker: Broker, max_frame_bytes: int
) -> None:
    async for frame in ws:
        conn.heard()
        if frame.type is WSMsgType.PING:
            await ws.pong(frame.data)
            continue
        if frame.type is WSMsgType.PONG:
            continue
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
