"""Native TLS for signaling: ``serve --tls-cert/--tls-key`` makes it HTTPS and WSS.

Peers send their bearer token on the upgrade request and receive TURN credentials,
SDP and relayed frames over the socket; across a network all of that needs TLS. A
TLS-terminating proxy in front works too; this needs none. Modern TLS only: 1.3 by
default, 1.2 on request with forward-secret AEAD suites only.
"""

from __future__ import annotations

import asyncio.sslproto
import ipaddress
import logging
import ssl

from signaling.settings import SignalingSettings

__all__ = ["MIN_TLS_READ_BUFFER_BYTES", "is_loopback", "server_ssl_context", "set_tls_read_buffer"]

logger = logging.getLogger("signaling")

MIN_TLS_READ_BUFFER_BYTES = 16 * 1024
"""A TLS record carries at most 16 KiB of plaintext: a read buffer this large takes a
whole record's worth in one ``recv``; smaller would only cost more system calls."""

_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_ssl_context(settings: SignalingSettings) -> ssl.SSLContext | None:
    """The server's TLS context, or ``None`` without ``--tls-cert``; ``ValueError`` (with
    the file names, never their contents) if the certificate or key cannot be loaded."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(_TLS12_CIPHERS)  # TLS 1.3 suites are all AEAD and unaffected
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: "
            f"{exc.strerror or exc.__class__.__name__}"
        ) from exc
    return context


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps plaintext on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def set_tls_read_buffer(nbytes: int) -> int | None:
    """Make every TLS connection this process accepts from now on read into ``nbytes``.

    Why: asyncio gives each TLS connection a zero-filled (so resident) read buffer of
    ``asyncio.sslproto.SSLProtocol.max_size`` bytes, 256 KiB, and keeps it as long as
    the connection lives. Signaling holds thousands of idle peers, each of which sends
    a ping now and then: 256 KiB of them was ~94 % of a wss:// peer's ~280 KB (10,000
    peers: 2.8 GB against ~85 MB over ws://). A TLS record holds at most 16 KiB of
    plaintext, so 32 KiB loses nothing but a few system calls on bulk relay traffic
    (docs/signaling.md has the figures).

    ``max_size`` is a class attribute, public but undocumented (the same in CPython 3.11,
    3.12 and 3.13): setting it changes the whole process, which is why only
    ``signaling-server serve`` calls this, and only with ``--tls-cert``. Returns the
    previous value (tests put it back), or ``None`` if this Python has no such attribute
    (then nothing changes, and a warning says so)."""
    if nbytes < MIN_TLS_READ_BUFFER_BYTES:
        raise ValueError(
            f"the TLS read buffer must be at least {MIN_TLS_READ_BUFFER_BYTES} bytes "
            "(one TLS record)"
        )
    protocol = asyncio.sslproto.SSLProtocol
    previous = getattr(protocol, "max_size", None)
    if not isinstance(previous, int):
        logger.warning(
            "this Python's asyncio has no SSLProtocol.max_size: --tls-read-buffer-bytes "
            "has no effect (each TLS peer keeps asyncio's own read buffer)"
        )
        return None
    protocol.max_size = nbytes
    logger.info("TLS read buffer: %d bytes per connection (asyncio's was %d)", nbytes, previous)
    return previous
