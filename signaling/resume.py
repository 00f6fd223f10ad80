"""Resume secrets: how a peer that reconnects proves it is the holder of its old connection.

When a peer's address changes, its old WebSocket is dead but still listed here, and a
newcomer claiming the same peer id would have to wait for the old one to fail a ping
(``--takeover-probe-s``) before taking over. To skip that wait, every connection gets a
random secret in its ``Welcome`` (sent only over that connection's own authenticated,
TLS-protected socket; never logged). A reconnecting peer presents it in the
``X-Tandem-Resume`` header of its upgrade request; if it is the secret of the connection
holding that peer id, the old connection is closed at once (4010) and the newcomer
admitted. Any other value (none, stale, wrong) changes nothing: the probe decides as
before, so two devices sharing one token still cannot take each other's id.

The secret is never compared or shipped as such: only its SHA-256 digest, compared in
constant time, also when it crosses to another instance of a cluster (a Redis observer
learns a digest, which is no use on a WebSocket, where the secret itself is needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["MAX_SECRET_CHARS", "digest", "new_secret", "presented_digest", "same"]

MAX_SECRET_CHARS = 128
"""A presented value longer than this is not a secret we minted: ignored."""


def new_secret() -> str:
    """A fresh secret for one connection (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """What is stored and compared: the secret's SHA-256."""
    return hashlib.sha256(secret.encode()).digest()


def presented_digest(header: str | None) -> bytes | None:
    """The digest of the secret a newcomer presented, or ``None`` if it presented none
    that could be one of ours (absent, empty, too long)."""
    if header is None:
        return None
    header = header.strip()
    if not header or len(header) > MAX_SECRET_CHARS:
        return None
    return digest(header)


def same(a: bytes | None, b: bytes | None) -> bool:
    """Whether two digests are equal, in constant time; never for a missing one."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a, b)
