"""How a peer may reach signaling: ``wss://`` verified, or ``ws://`` only on loopback.

Signaling carries each peer's bearer token, its TURN credentials, SDP and (on the relay)
encrypted frames. Across a network that must be TLS, verified against the system CAs or
``--ca-file``; a plaintext ``ws://`` URL is allowed without ``--insecure-signaling`` only
when it names this host (127.0.0.0/8, ``::1``, ``localhost``), where nothing crosses a
network. Checked when the client is built, so a bad URL fails at startup, not later.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["InsecureSignaling", "client_ssl_context", "is_loopback_host"]

_PLAIN = frozenset({"ws", "http"})
_SECURE = frozenset({"wss", "https"})


class InsecureSignaling(ValueError):
    """The signaling URL would carry secrets in clear, or cannot be used as given."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine: a loopback address or the name ``localhost``."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


def client_ssl_context(
    url: str, *, ca_file: Path | None = None, insecure: bool = False
) -> ssl.SSLContext | None:
    """The TLS context to connect to ``url`` with (``None`` for an allowed ``ws://``).

    ``wss://`` verifies the server's certificate and name against ``ca_file`` if given
    (only that CA, e.g. a private one), else the system CAs; TLS 1.2 at least.
    ``InsecureSignaling`` for ``ws://`` to another host without ``insecure``, for an
    unknown scheme, or for ``ca_file`` with a plaintext URL (it would protect nothing).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _SECURE:
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise InsecureSignaling(
                f"--ca-file {ca_file}: cannot load a CA from it ({exc})"
            ) from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
    if scheme not in _PLAIN:
        raise InsecureSignaling(f"--signaling must be a wss:// (or ws://) URL, not {url!r}")
    if ca_file is not None:
        raise InsecureSignaling("--ca-file is set but --signaling is plaintext ws://: use wss://")
    host = parts.hostname or ""
    if not insecure and not is_loopback_host(host):
        raise InsecureSignaling(
            f"refusing plaintext {scheme}:// to {host or url!r}: this peer's token, its TURN "
            "credentials and session setup would cross the network in clear. Use "
            "wss:// (signaling-server serve --tls-cert/--tls-key), or pass "
            "--insecure-signaling to accept that"
        )
    return None
