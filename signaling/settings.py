"""Settings of the signaling server (``TANDEM_*`` env vars, ``--config`` TOML, flags).

Every limit the server enforces is a named field here, so that an operator can see and
change it from ``signaling-server serve --help`` instead of reading the code.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import TandemSettings
from shared.tokens import MIN_SECRET_BYTES

__all__ = ["IPNetwork", "SignalingSettings", "is_loopback_host"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a listen address) is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or 0.0.0.0/:: spelled otherwise: assume the network sees it


def _parse_networks(text: str | None) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in (text or "").split(",")
        if part.strip()
    )


class SignalingSettings(TandemSettings):
    """What ``signaling-server serve`` and ``signaling-server token`` read."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(
        default=8765, ge=0, le=65535, description="TCP port to listen on (0 = any free port)."
    )
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain: serve HTTPS/WSS natively (peers then use wss://). "
        "Needs --tls-key. Unset: plaintext, for loopback or behind a TLS-terminating proxy.",
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of --tls-cert (keep it mode 0600)."
    )
    tls_min_version: Literal["1.2", "1.3"] = Field(
        default="1.3",
        description="Oldest TLS version accepted with --tls-cert. Every Tandem peer speaks "
        "1.3; 1.2 (for an old monitoring client) allows only ECDHE with AEAD ciphers.",
    )
    tls_read_buffer_bytes: int = Field(
        default=32 * 1024,
        ge=16 * 1024,
        le=16 * 1024 * 1024,
        description="With --tls-cert: bytes each TLS connection reads into, held for its "
        "whole life (asyncio's default, 256 KiB, makes an idle wss:// peer cost ~280 KB; "
        "32 KiB, ~55 KB). At least 16384 (a TLS record's plaintext).",
    )
    relay_buffer_bytes: int = Field(
        default=1024 * 1024,
        ge=16 * 1024,
        le=256 * 1024 * 1024,
        description="Bytes of relayed frames signaling holds for one member of one relayed "
        "session while its socket is slow; past it that session is dropped (RelayClose to "
        "both members), never the peer's connection or anyone else's session. At least "
        "--max-frame-bytes.",
    )
    secret: SecretStr | None = Field(
        default=None,
        description=(
            f"Shared HMAC secret that signs peer tokens (at least {MIN_SECRET_BYTES} bytes); "
            "prefer the env var over the flag, which other users can see in ps."
        ),
    )
    previous_secret: SecretStr | None = Field(
        default=None,
        description="The secret being rotated out: tokens it signed are still accepted "
        "until it is removed (then their peers are refused at reconnect). New tokens are "
        "always signed with --secret. Prefer the env var TANDEM_PREVIOUS_SECRET.",
    )
    trusted_proxy: str | None = Field(
        default=None,
        description="Comma-separated CIDRs of reverse proxies (e.g. 127.0.0.1/32 for a TLS "
        "proxy on this host): only a connection from one of them may name the client's "
        "address in X-Forwarded-For. Unset: the socket's address is the client's.",
    )
    metrics_host: str | None = Field(
        default=None,
        description="Serve /metrics and /healthz on a separate listener at this address "
        "(e.g. 127.0.0.1). Unset: both are on the main listener if --host is loopback; if "
        "it is not, /metrics is not served at all (/healthz still is).",
    )
    metrics_port: int = Field(
        default=9765,
        ge=0,
        le=65535,
        description="Port of the --metrics-host listener (0 = any free port).",
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
        "'turn:turn.example.org:3478,turns:turn.example.org:443'. A turn: URL without "
        "?transport= is offered over UDP and TCP both; turns: is TURN over TLS (networks "
        "that pass only HTTPS). Needs --turn-secret.",
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
    expiry_check_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A connected peer is closed (code 4001) when its token expires; its "
        "expiry is also re-checked at least this often, in seconds, so that a step of the "
        "wall clock is followed.",
    )
    takeover_probe_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="When a second connection claims a connected peer id, the first is "
        "pinged: if it answers within this many seconds the newcomer is refused (close "
        "4009), else the newcomer takes the id. A newcomer presenting the first one's "
        "resume secret (the same peer after a network change) takes it at once, no ping.",
    )
    max_model_name_chars: int = Field(
        default=256,
        ge=1,
        le=512,
        description="Longest model name a Register, Offer or RelayOpen may carry; longer "
        "ones are refused with the session id.",
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
        description="A peer silent this long is pinged, and dropped if nothing comes back "
        "within half of it (peers pinging more often are never pinged).",
    )
    offer_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a brokered offer waits for its answer before it is forgotten.",
    )

    redis_url: str | None = Field(
        default=None,
        description="Share presence, worker load, matchmaking, offers/answers and the relay "
        "with every other signaling instance on this Redis (redis://HOST:PORT/DB, or "
        "rediss:// across a network). Unset: this process alone, in memory. See "
        "docs/signaling.md for what is global and what stays per instance.",
    )
    redis_prefix: str = Field(
        default="tandem",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key and channel: two clusters may share one Redis "
        "under different prefixes.",
    )
    redis_presence_ttl_s: float = Field(
        default=15.0,
        ge=0.3,
        le=3600,
        description="With --redis-url: presence (which instance holds a peer, the workers it "
        "registered) expires this long after the instance's last heartbeat; heartbeats run "
        "at a third of it. A dead instance's peers are free to reconnect elsewhere after it.",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked at load time so that a weak secret fails before the server starts,
        # not on the first peer that connects. The message never echoes the secret.
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the shared secret must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("previous_secret")
    @classmethod
    def _previous_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the previous secret must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("trusted_proxy")
    @classmethod
    def _cidrs(cls, value: str | None) -> str | None:
        try:
            _parse_networks(value)
        except ValueError:
            raise ValueError(
                "must be comma-separated addresses or CIDRs, e.g. 127.0.0.1/32,10.0.0.0/8"
            ) from None
        return value

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> SignalingSettings:
        if self.turn_url and self.turn_secret is None:
            raise ValueError("--turn-url needs --turn-secret (coturn's static-auth-secret)")
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://HOST:PORT/DB (or rediss://, unix://) URL")
        return value

    @model_validator(mode="after")
    def _rotation_is_consistent(self) -> SignalingSettings:
        if self.previous_secret is None:
            return self
        if self.secret is None:
            raise ValueError("--previous-secret needs the current --secret")
        if self.previous_secret.get_secret_value() == self.secret.get_secret_value():
            raise ValueError("--previous-secret must differ from --secret")
        return self

    @model_validator(mode="after")
    def _metrics_listener_is_separate(self) -> SignalingSettings:
        if self.metrics_host is not None and (self.metrics_host, self.metrics_port) == (
            self.host,
            self.port,
        ):
            raise ValueError("--metrics-host/--metrics-port must differ from --host/--port")
        return self

    @property
    def trusted_proxies(self) -> tuple[IPNetwork, ...]:
        return _parse_networks(self.trusted_proxy)

    @property
    def metrics_on_main(self) -> bool:
        """Whether the main listener serves ``/metrics`` (see ``metrics_host``)."""
        return self.metrics_host is None and is_loopback_host(self.host)

    @model_validator(mode="after")
    def _tls_pair(self) -> SignalingSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
        return self

    @model_validator(mode="after")
    def _relay_buffer_holds_a_frame(self) -> SignalingSettings:
        if self.relay_buffer_bytes < self.max_frame_bytes:
            raise ValueError(
                "--relay-buffer-bytes must be at least --max-frame-bytes (one frame must fit)"
            )
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

    def verification_secrets(self) -> tuple[str, ...]:
        """The secrets tokens are accepted under: the current one, then the previous."""
        current = self.require_secret()
        if self.previous_secret is None:
            return (current,)
        return (current, self.previous_secret.get_secret_value())
