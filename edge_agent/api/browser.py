"""Keeping web pages from driving the API: ``Host``, ``Origin`` and ``Content-Type``.

The edge listens on localhost, and every web page the user opens can reach localhost. A
page may POST a "simple" request (``text/plain`` or a form: no CORS preflight) to
``/v1/chat/completions`` with ``model: "cloud"`` and spend the cloud budget; with DNS
rebinding (its own name re-pointed at 127.0.0.1, so that it is same-origin) it can read
the answers too. Browsers always say what they are doing, and other clients (curl, the
SDKs, Open WebUI's server) do not, so three checks refuse the browser and nothing else:

* ``Host`` must name this agent (403 otherwise): localhost, 127.0.0.1, [::1], the bind
  address or the address the client connected to, or an ``--allowed-host``. A rebound
  page sends its own name. The port is not checked for these names (only an
  ``--allowed-host`` given with one is held to it): a rebinding attacker controls the
  name, not the port, and Docker or SSH port forwarding legitimately changes the port.
* An ``Origin`` (browsers send one with every cross-origin request and every POST) must
  be in ``--cors-origin`` (403 otherwise). For those origins, preflights are answered and
  responses carry the CORS headers, so a browser client (Open WebUI-style) works.
* A POST must declare ``Content-Type: application/json`` (415 otherwise): the types a page
  may send without a preflight are exactly the ones this refuses.

``/healthz`` (and llama-server's ``/health``) is exempt from all three: local probes
(systemd, Docker, Kubernetes) reach it under any name, and it says nothing worth
stealing (ready or not, the local model's name, whether a cloud is linked).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from edge_agent.api.context import (
    FAILOVERS_HEADER,
    PATH_HEADER,
    REQUEST_ID_HEADER,
    ROUTE_REASON_HEADER,
    SERVED_BY_HEADER,
)
from edge_agent.errors import Forbidden, UnsupportedMediaType
from edge_agent.settings import LOOPBACK_HOSTS, EdgeSettings, split_host

__all__ = ["GUARD_EXEMPT_PATHS", "BrowserPolicy", "browser_guard", "cors_headers"]

GUARD_EXEMPT_PATHS = frozenset({"/healthz", "/health"})
"""Answered whatever the Host and Origin (see the module's docstring)."""

_UNSPECIFIED = frozenset({"0.0.0.0", "::"})
_EXPOSED = ", ".join(
    (
        REQUEST_ID_HEADER,
        SERVED_BY_HEADER,
        ROUTE_REASON_HEADER,
        PATH_HEADER,
        FAILOVERS_HEADER,
        "Retry-After",
    )
)
_PREFLIGHT_MAX_AGE_S = 600


def _canonical(name: str) -> str:
    """A host name or address in one spelling (``::ffff:127.0.0.1`` is ``127.0.0.1``)."""
    name = name.strip().lower().strip("[]")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _local_address(request: web.BaseRequest) -> str | None:
    """The address this connection reached (what a client typing an IP sends)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return _canonical(str(sockname[0]))
    return None


@dataclass(frozen=True)
class BrowserPolicy:
    """Which ``Host`` names and ``Origin``s this agent serves; from its settings."""

    bind_host: str = "127.0.0.1"
    allowed_hosts: tuple[tuple[str, int | None], ...] = ()
    cors_origins: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> BrowserPolicy:
        return cls(
            bind_host=settings.host,
            allowed_hosts=tuple((_canonical(n), p) for n, p in settings.allowed_hosts),
            cors_origins=settings.cors_origins,
        )

    def host_allowed(self, header: str, request: web.BaseRequest) -> bool:
        """Whether a ``Host`` header names this agent, for a request on this connection."""
        raw_name, port = split_host(header)
        name = _canonical(raw_name)
        if port == -1:
            return False
        for allowed, allowed_port in self.allowed_hosts:
            if name == allowed and (allowed_port is None or allowed_port == port):
                return True
        own = {_canonical(h) for h in LOOPBACK_HOSTS} | {_canonical(self.bind_host)}
        local_ip = _local_address(request)
        if local_ip is not None:
            own.add(local_ip)
        return name in own - _UNSPECIFIED

    def origin_allowed(self, origin: str) -> bool:
        return origin.strip().lower() in self.cors_origins


def _preflight(request: web.Request) -> web.Response:
    """The answer to an allowed origin's CORS preflight (its CORS headers are added as
    for every response, by ``cors_headers``)."""
    headers = {
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S),
    }
    # The origin is trusted: allow the headers its client asks for (the OpenAI SDK sends
    # its own x-stainless-* headers beside Authorization and Content-Type).
    asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    if asked:
        headers["Access-Control-Allow-Headers"] = asked
    return web.Response(status=204, headers=headers)


def browser_guard(policy: BrowserPolicy) -> Middleware:
    """Refuse what only a browser on another site would send; answer allowed preflights.

    Runs inside the outcome middleware (so refusals take the dialect's error shape) and
    before the API key check (a preflight carries no key).
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in GUARD_EXEMPT_PATHS:
            return await handler(request)
        host = request.headers.get(hdrs.HOST)
        # HTTP/1.0 clients may send no Host at all; browsers always send one.
        if host is not None and not policy.host_allowed(host, request):
            raise Forbidden(
                f"This agent does not answer to the host {host[:100]!r}; add it with "
                "--allowed-host if it is yours."
            )
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None:
            if not policy.origin_allowed(origin):
                raise Forbidden(
                    f"Requests from web pages of {origin[:100]!r} are not allowed; add the "
                    "origin with --cors-origin if it is yours."
                )
            if request.method == hdrs.METH_OPTIONS and (
                hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            ):
                return _preflight(request)
        if request.method == hdrs.METH_POST and request.content_type != "application/json":
            raise UnsupportedMediaType(
                "Request bodies must be JSON sent as 'Content-Type: application/json' "
                "(curl: -H 'Content-Type: application/json')."
            )
        return await handler(request)

    return guard


def cors_headers(
    policy: BrowserPolicy,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: CORS headers on every answer to an allowed
    origin, streams included (their headers go out before the handler returns)."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or not policy.origin_allowed(origin):
            return
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)

    return add
