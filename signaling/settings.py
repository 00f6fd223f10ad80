"""Settings of the signaling server (``TANDEM_*`` env vars, ``--config`` TOML, flags).

Every limit the server enforces is a named field here, so that an operator can see and
change it from ``signaling-server serve --help`` instead of reading the code.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import TandemSettings
from shared.tokens import MIN_SECRET_BYTES

__all__ = ["SignalingSettings"]


class SignalingSettings(TandemSettings):
    """What ``signaling-server serve`` and ``signaling-server token`` read."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(
        default=8765, ge=0, le=65535, description="TCP port to listen on (0 = any free port)."
    )
    secret: SecretStr | None = Field(
        default=None,
        description=(
            f"Shared HMAC secret that signs peer tokens (at least {MIN_SECRET_BYTES} bytes); "
            "prefer the env var over the flag, which other users can see in ps."
        ),
    )
    stun_url: str | None = Field(
        default=None,
        description="STUN server(s) handed to peers, comma-separated (e.g. "
        "stun:stun.example.org:3478). WebRTC uses the first; `edge-agent netcheck` compares "
        "the first two to tell easy NATs from hard ones. Unset: none (loopback/LAN need none).",
    )
    turn_url: str | None = Field(
        default=None,
        description="TURN server(s) handed to peers, comma-separated, e.g. "
        "'turn:turn.example.org:3478?transport=udp,turn:turn.example.org:3478?transport=tcp'. "
        "Needs --turn-secret.",
    )
    turn_secret: SecretStr | None = Field(
        default=None,
        description="coturn's static-auth-secret: per-peer TURN credentials are minted from it "
        "(TURN REST API scheme).",
    )
    turn_ttl_s: int = Field(
        default=6 * 3600,
        ge=10,
        description="Lifetime of minted TURN credentials; fresh ones are pushed to every "
        "connected peer at half this interval.",
    )
    relay_bytes_per_s: int = Field(
        default=1_000_000,
        ge=1024,
        description="Pace of each relayed session (frames through signaling when no WebRTC "
        "path exists), in bytes per second; bursts of twice that.",
    )
    relay_max_sessions_per_edge: int = Field(
        default=4, ge=0, description="Relayed sessions one edge may hold at once."
    )
    max_pending_offers_per_edge: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="WebRTC offers one edge may have waiting for a worker's answer at once "
        "(each costs the worker a peer connection and a TURN allocation); more are refused "
        "with a SignalError. An edge needs about three (its link, a standby, an upgrade).",
    )
    auth_max_failures: int = Field(
        default=20,
        ge=1,
        description="Failed authentications one address may make within --auth-window-s "
        "before it gets 429 for the rest of the window.",
    )
    auth_window_s: float = Field(
        default=60.0, gt=0, description="Window of the failed-authentication limit, in seconds."
    )
    max_frame_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Largest WebSocket frame accepted from a peer, in bytes.",
    )
    token_ttl_s: int = Field(
        default=86400, ge=1, description="Default lifetime of tokens minted by `token`, in seconds."
    )
    heartbeat_s: float = Field(
        default=20.0,
        gt=0,
        description="WebSocket ping interval; a peer that misses a pong is dropped.",
    )
    offer_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a brokered offer waits for its answer before it is forgotten.",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked at load time so that a weak secret fails before the server starts,
        # not on the first peer that connects. The message never echoes the secret.
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the shared secret must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> SignalingSettings:
        if self.turn_url and self.turn_secret is None:
            raise ValueError("--turn-url needs --turn-secret (coturn's static-auth-secret)")
        return self

    @property
    def stun_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in (self.stun_url or "").split(",") if u.strip())

    @property
    def turn_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in (self.turn_url or "").split(",") if u.strip())

    def require_secret(self) -> str:
        """The secret's text; ``ValueError`` with a one-line remedy if it is unset."""
        if self.secret is None:
            raise ValueError(
                f"no shared secret: set TANDEM_SECRET (at least {MIN_SECRET_BYTES} bytes) "
                "or `secret` in the --config file"
            )
        return self.secret.get_secret_value()
