"""Run the processes' real aiohttp apps in this event loop, on loopback port 0."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from shared.messages import Role
from shared.tokens import mint_token

SECRET = "test-secret-" + "x" * 32


def token(role: Role, peer_id: str) -> str:
    return mint_token(SECRET, role=role, peer_id=peer_id, ttl_s=600, now=time.time())


@asynccontextmanager
async def serving(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (its startup and cleanup run), over TLS with
    ``ssl_context``; yields the port."""
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        address = runner.addresses[0]
        yield int(address[1])
    finally:
        await runner.cleanup()
