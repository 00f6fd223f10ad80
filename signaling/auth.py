"""Authenticating an upgrade request: who is knocking, with what token, and the verdict.

Two rules shape it:

- **A valid token always gets in.** Only failures are counted and limited, per client
  address: behind a TLS proxy every peer arrives from the proxy's address, so limiting
  the address itself would let one stranger (or a few peers with expired tokens) lock out
  the whole fleet.
- **The client address is the socket's,** unless the socket's peer is a configured
  trusted proxy (``--trusted-proxy``); then it is the nearest untrusted address in
  ``X-Forwarded-For``. Anyone else can write that header, so it is ignored from them.
"""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from shared.errors import AuthError, TokenExpired, UnknownSigningKey
from shared.tokens import PeerClaims, verify_token
from signaling.keys import CLOCK_KEY, LIMITER_KEY, METRICS_KEY, SETTINGS_KEY
from signaling.settings import IPNetwork

__all__ = ["authenticate", "bearer_token", "client_address", "limit_key"]

logger = logging.getLogger(__name__)

_IPV6_LIMIT_PREFIX = 64  # one IPv6 host usually holds a whole /64: count failures per /64


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(request: web.Request, trusted: tuple[IPNetwork, ...]) -> str:
    """The address that sent ``request``: see the module docstring."""
    remote = request.remote or "unknown"
    peer = _ip(remote)
    if peer is None or not any(peer in net for net in trusted):
        return remote
    hops = [h for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
    client = peer
    for hop in reversed(hops):  # the right-most entries were added by our own proxies
        address = _ip(hop)
        if address is None:
            break  # garbage from further left: the last address we trust is the answer
        client = address
        if not any(address in net for net in trusted):
            break
    return str(client)


def limit_key(address: str) -> str:
    """What failures are counted under: the address, or its /64 for IPv6."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/{_IPV6_LIMIT_PREFIX}", strict=False))
    return address


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None if there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _refusal(
    status: int, kind: str, code: str, message: str, headers: dict[str, str]
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def authenticate(request: web.Request) -> PeerClaims | web.Response:
    """The token's claims, or the 401 (429 after repeated failures) to send instead."""
    app = request.app
    settings, metrics, limiter = app[SETTINGS_KEY], app[METRICS_KEY], app[LIMITER_KEY]
    now = app[CLOCK_KEY]()
    token = bearer_token(request)
    if token is None:
        reason, text = "missing_token", "missing bearer token in the Authorization header"
    else:
        try:
            return verify_token(settings.verification_secrets(), token, now=now)
        except TokenExpired:
            reason, text = "token_expired", "token has expired"
        except UnknownSigningKey as exc:
            reason, text = "unknown_key", str(exc)
        except AuthError:
            reason, text = "token_invalid", "token is malformed or its signature is wrong"
    source = client_address(request, settings.trusted_proxies)
    key = limit_key(source)
    wait_s = limiter.blocked_for(key, now)
    if wait_s > 0:
        metrics.auth_failures.labels(reason="rate_limited").inc()
        return _refusal(
            429,
            "rate_limit_error",
            "rate_limited",
            "too many failed authentications from this address; retry later "
            "(a valid token is always accepted)",
            {"Retry-After": str(int(wait_s) + 1)},
        )
    metrics.auth_failures.labels(reason=reason).inc()
    limiter.failed(key, now)
    logger.info("refused connection from %s: %s", source, reason)
    return _refusal(401, "authentication_error", reason, text, {"WWW-Authenticate": "Bearer"})
