"""Issue 13, item 1: one address must not lock the fleet out of signaling.

The attack: behind the TLS proxy the README recommends, every peer reaches signaling from
the proxy's address. Before the fix, ``FailureLimiter`` counted failures per address and
then refused *everything* from it with 429: 20 bad tokens from anyone (a stranger, or a
few edges with expired tokens) locked out every edge and worker, valid tokens included.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from shared.messages import Role
from tests.security.auth_support import bearer, signaling_server, token, upgrade_status

FAILURES = "5"  # --auth-max-failures, so that the attack is quick


async def test_bad_tokens_from_one_address_do_not_lock_out_valid_tokens(tmp_path: Path) -> None:
    """A stranger floods bad tokens from the address the whole fleet shares (here
    127.0.0.1); the fleet's valid tokens still get in. Before the fix: 429."""
    async with (
        signaling_server(tmp_path, "--auth-max-failures", FAILURES) as server,
        aiohttp.ClientSession() as session,
    ):
        statuses = [
            await upgrade_status(session, server.ws, bearer("not.a.token")) for _ in range(20)
        ]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # failures are limited
        for role, peer_id in ((Role.WORKER, "gpu-1"), (Role.EDGE, "pi-1"), (Role.EDGE, "pi-2")):
            assert await upgrade_status(session, server.ws, bearer(token(role, peer_id))) == 101


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    """Without --trusted-proxy, an attacker cannot dodge the limit by writing a fresh
    X-Forwarded-For on every try: the socket's address is what counts. (A guard: this
    held before the fix too; reading the header must not open that hole.)"""
    async with (
        signaling_server(tmp_path, "--auth-max-failures", FAILURES) as server,
        aiohttp.ClientSession() as session,
    ):
        statuses = [
            await upgrade_status(
                session,
                server.ws,
                {**bearer("not.a.token"), "X-Forwarded-For": f"198.51.100.{i}"},
            )
            for i in range(10)
        ]
        assert statuses[5:] == [429] * 5
        assert "198.51.100." not in server.log()  # the spoofed addresses are not believed


async def test_behind_a_trusted_proxy_each_client_is_limited_on_its_own(tmp_path: Path) -> None:
    """Behind a trusted proxy, failures count per forwarded client: the attacker's
    address is limited, another client's bad token still gets its 401, and a valid token
    from the attacker's own address gets in."""
    async with (
        signaling_server(
            tmp_path, "--auth-max-failures", FAILURES, "--trusted-proxy", "127.0.0.1/32"
        ) as server,
        aiohttp.ClientSession() as session,
    ):
        attacker = {"X-Forwarded-For": "203.0.113.7"}
        statuses = [
            await upgrade_status(session, server.ws, {**bearer("not.a.token"), **attacker})
            for _ in range(8)
        ]
        assert statuses[5:] == [429] * 3
        other = {**bearer("expired.or.bad"), "X-Forwarded-For": "198.51.100.1, 127.0.0.1"}
        assert await upgrade_status(session, server.ws, other) == 401
        valid = {**bearer(token(Role.EDGE, "pi-1")), **attacker}
        assert await upgrade_status(session, server.ws, valid) == 101
        assert "refused connection from 203.0.113.7" in server.log()
