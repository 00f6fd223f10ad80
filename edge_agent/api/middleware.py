"""The two middlewares: request outcome (context, errors, metric) and API key.

``outcome`` is outermost so that it sees everything, the 401s of ``api_key`` and
aiohttp's own 404/405/413 included, and turns each into the error shape of the
dialect the path belongs to. It is also the single place that counts requests, so the
count matches what clients saw.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from edge_agent.api.context import CLIENT_CLOSED, REQUEST_CONTEXT, RequestContext
from edge_agent.api.errors import api_error
from edge_agent.errors import EdgeError, Unauthorized
from edge_agent.metrics import EdgeMetrics

__all__ = ["AUTH_EXEMPT_PATHS", "OLLAMA_PREFIX", "api_key_middleware", "outcome_middleware"]

log = logging.getLogger(__name__)

AUTH_EXEMPT_PATHS = frozenset(
    {
        "/healthz",
        "/health",
        "/",
        "/api/version",
        "/openapi.json",
        "/status",
        "/status/app.js",
        "/status/app.css",
    }
)
"""Paths served without the API key: liveness probes (systemd, k8s; llama-server's
``/health``, Ollama's ``/`` and ``/api/version``, which clients call to find the server,
as Ollama and llama-server answer them without a key) carry no secrets, and the OpenAPI
document holds none either; clients read it to learn how to authenticate. The status
page's files hold no data (it asks for the key to read ``/status.json``). Anything that
runs or describes the model (``/api/tags``, ``/api/show``, ``/props``, ``/tokenize``...)
needs the key."""

OLLAMA_PREFIX = "/api/"
"""Paths under this prefix answer errors in Ollama's shape."""


def _endpoint(request: web.Request) -> str:
    """The metric label for a request: its route template, never the raw path (an
    attacker-chosen path would otherwise create a series per URL)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def outcome_middleware(metrics: EdgeMetrics) -> Middleware:
    """Give each request a ``RequestContext``; map errors; stamp headers; count it."""

    @web.middleware
    async def outcome(request: web.Request, handler: Handler) -> web.StreamResponse:
        ctx = RequestContext()
        request[REQUEST_CONTEXT] = ctx
        status = 500
        try:
            response = await _answer(request, handler, ctx)
            status = ctx.status or response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        except web.HTTPException as exc:  # only non-errors (redirects) get here
            status = exc.status
            raise
        finally:
            metrics.requests.labels(_endpoint(request), ctx.served_by, str(status)).inc()

    return outcome


async def _answer(
    request: web.Request, handler: Handler, ctx: RequestContext
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except (EdgeError, web.HTTPException) as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            raise
        error = api_error(exc, request)
        level = logging.WARNING if error.status >= 500 else logging.DEBUG
        log.log(level, "request %s: %s %s", ctx.request_id, error.status, error.code)
    except Exception:
        log.exception("request %s: unhandled error", ctx.request_id)
        error = api_error(Exception(), request)
    else:
        if not response.prepared:
            ctx.apply(response)
        return response
    response = error.response(ollama=request.path.startswith(OLLAMA_PREFIX))
    ctx.apply(response)
    return response


def api_key_middleware(api_key: SecretStr) -> Middleware:
    """Require ``Authorization: Bearer <api_key>`` outside ``AUTH_EXEMPT_PATHS``.

    The comparison is constant-time; neither the expected nor the offered key is ever
    logged or echoed.
    """
    expected = api_key.get_secret_value().encode()

    @web.middleware
    async def check_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in AUTH_EXEMPT_PATHS:
            scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
            # surrogatepass: a header with bytes that are not UTF-8 (aiohttp hands them
            # over as surrogates) must compare unequal, not raise into a 500.
            valid = scheme.lower() == "bearer" and hmac.compare_digest(
                offered.strip().encode("utf-8", "surrogatepass"), expected
            )
            if not valid:
                raise Unauthorized("Missing or invalid API key (send 'Authorization: Bearer KEY').")
        return await handler(request)

    return check_api_key
