"""Native TLS for signaling: ``serve --tls-cert/--tls-key`` makes it HTTPS and WSS.

Peers send their bearer token on the upgrade request and receive TURN credentials,
SDP and relayed frames over the socket; across a network all of that needs TLS. A
TLS-terminating proxy in front works too; this needs none. Modern TLS only: 1.3 by
default, 1.2 on request with forward-secret AEAD suites only.
"""

from __future__ import annotations

import ipaddress
import ssl

from signaling.settings import SignalingSettings

__all__ = ["is_loopback", "server_ssl_context"]

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
