"""What ``signaling-server install`` installs (``daemon.install``): its env file gets a
fresh random ``TANDEM_SECRET``, the key that signs every peer token."""

from __future__ import annotations

from daemon.spec import InstallSpec
from signaling.settings import SignalingSettings

__all__ = ["SPEC"]

SPEC = InstallSpec(
    name="signaling",
    program="signaling-server",
    settings=SignalingSettings,
    generated_secrets=("TANDEM_SECRET",),
    next_steps=(
        "# put the TLS certificate and key where signaling.toml says (tls_cert, tls_key),",
        "# readable by the tandem user only; TANDEM_SECRET is in /etc/tandem/signaling.env",
    ),
)
