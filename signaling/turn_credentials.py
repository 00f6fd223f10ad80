"""Short-lived TURN credentials, minted per peer from a secret shared with coturn.

This is the "TURN REST API" scheme coturn implements with ``use-auth-secret`` and
``static-auth-secret``: the username is ``<expiry unix time>:<peer id>`` and the password
is ``base64(HMAC-SHA1(secret, username))``. coturn recomputes the password and refuses
expired usernames, so signaling never has to tell coturn about a peer. Pure: time is an
argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.messages import IceServer

__all__ = ["expand_turn_urls", "ice_servers", "turn_credentials"]


def turn_credentials(secret: str, peer_id: str, *, now: float, ttl_s: int) -> tuple[str, str]:
    """(username, password) valid until ``now + ttl_s``."""
    username = f"{int(now) + ttl_s}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def expand_turn_urls(urls: tuple[str, ...]) -> tuple[str, ...]:
    """Each ``turn:`` URL without ``?transport=`` as two: UDP, then TCP.

    RFC 7065 reads a bare ``turn:HOST:3478`` as UDP only, yet coturn serves the port over
    both, and an operator who writes the one URL means both: a peer whose network blocks
    UDP must still get TURN over TCP (else it lives on the relay through signaling).
    ``turns:`` is TLS, over TCP already; explicit transports are kept as written.
    """
    out: list[str] = []
    for url in urls:
        if url.lower().startswith("turn:") and "transport=" not in url.lower():
            sep = "&" if "?" in url else "?"
            candidates = [f"{url}{sep}transport=udp", f"{url}{sep}transport=tcp"]
        else:
            candidates = [url]
        out.extend(u for u in candidates if u not in out)
    return tuple(out)


def ice_servers(
    *,
    stun_urls: tuple[str, ...],
    turn_urls: tuple[str, ...],
    turn_secret: str | None,
    peer_id: str,
    now: float,
    ttl_s: int,
) -> tuple[IceServer, ...]:
    """The ICE servers one peer gets: STUN as configured, TURN with its own credentials
    (a ``turn:`` URL without a transport offered over UDP and TCP)."""
    servers: list[IceServer] = []
    if stun_urls:
        servers.append(IceServer(urls=stun_urls))
    if turn_urls and turn_secret:
        username, password = turn_credentials(turn_secret, peer_id, now=now, ttl_s=ttl_s)
        servers.append(
            IceServer(urls=expand_turn_urls(turn_urls), username=username, credential=password)
        )
    return tuple(servers)
