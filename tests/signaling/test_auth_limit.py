"""Repeated bad tokens from one address: 429 for a while, then 401 again; valid tokens
from that address get in throughout."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from shared.messages import Role
from signaling.app import create_app
from signaling.auth_limit import FailureLimiter
from signaling.settings import SignalingSettings
from tests.signaling.support import SECRET, FakeClock, token_for


def test_the_window_slides() -> None:
    limiter = FailureLimiter(max_failures=2, window_s=10)
    limiter.failed("a", now=0)
    assert limiter.blocked_for("a", now=0) == 0
    limiter.failed("a", now=1)
    assert limiter.blocked_for("a", now=1) == 9  # until the first failure leaves the window
    assert limiter.blocked_for("b", now=1) == 0  # other sources are not affected
    assert limiter.blocked_for("a", now=10.5) == 0


def test_memory_stays_bounded_under_a_spray_of_sources() -> None:
    limiter = FailureLimiter(max_failures=1, window_s=60, max_sources=100)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(limiter._failures) <= 100


async def test_signaling_answers_429_after_repeated_failures() -> None:
    """Bad tokens past the limit get 429 for the window; a valid one still gets in."""
    clock = FakeClock()
    settings = SignalingSettings(secret=SecretStr(SECRET), auth_max_failures=3, auth_window_s=30)
    async with TestClient(
        TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0)
    ) as client:
        bad = {"Authorization": "Bearer not.a.token"}
        for _ in range(3):
            async with client.get("/v1/signal", headers=bad) as resp:
                assert resp.status == 401
        async with client.get("/v1/signal", headers=bad) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["code"] == "rate_limited"
            assert int(resp.headers["Retry-After"]) > 0
        good = {"Authorization": f"Bearer {token_for(Role.EDGE, 'edge-1', now=clock())}"}
        ws = await client.ws_connect("/v1/signal", headers=good)
        await ws.close()
        clock.now += 31
        async with client.get("/v1/signal", headers=bad) as resp:
            assert resp.status == 401  # the window has passed
