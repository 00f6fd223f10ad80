"""Edge agent settings: every field is a ``--flag``, a ``TANDEM_<NAME>`` env var and a
key in the ``--config`` TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import PeerSettings

__all__ = ["LOOPBACK_HOSTS", "MIN_API_KEY_CHARS", "EdgeSettings"]

MIN_API_KEY_CHARS = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class EdgeSettings(PeerSettings):
    """Configuration of ``edge-agent serve``."""

    host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port.")
    api_key: SecretStr | None = Field(
        default=None,
        description="If set, clients must send 'Authorization: Bearer KEY'. Required when "
        "binding beyond localhost unless --insecure-no-api-key.",
    )
    insecure_no_api_key: bool = Field(
        default=False, description="Allow binding beyond localhost without an API key."
    )
    model: Path | None = Field(
        default=None, description="Local GGUF model (default: the bundled SmolLM2-135M-Instruct)."
    )
    n_ctx: int = Field(default=2048, ge=128, description="Local model's context window, in tokens.")
    n_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for the local model."
    )
    max_queue: int = Field(
        default=8, ge=0, description="Requests allowed to wait for the local model; more get 429."
    )
    max_queued_chunks: int = Field(
        default=64,
        ge=1,
        le=65_536,
        description="Token chunks one stream may hold for a slow reader. Local model: then "
        "it waits for the reader. Cloud stream: further chunks merge into the last one (the "
        "worker is not paused from here), so a slow reader gets fewer, larger chunks.",
    )
    signaling: str | None = Field(
        default=None,
        description="Signaling server URL, e.g. wss://signal.example.com:8765/v1/signal (ws:// "
        "on loopback only, unless --insecure-signaling). Unset: local only.",
    )
    cloud_model: str = Field(
        default="", description="Model to ask cloud workers for ('' = whatever they serve)."
    )
    default_route: Literal["auto", "local", "cloud"] = Field(
        default="auto", description="Route when a request names none."
    )
    auto_local_max_prompt_tokens: int = Field(
        default=1024,
        ge=0,
        description="auto route: prompts longer than this (estimated) go to the cloud.",
    )
    auto_local_max_tokens: int = Field(
        default=512,
        ge=0,
        description="auto route: requests asking for more output go to the cloud.",
    )
    router_model: Path | None = Field(
        default=None,
        description="Learned router weights (JSON from python -m router_lab.train); "
        "default: the bundled ones.",
    )
    router_cloud_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="auto route: learned score at or above which a prompt goes to the cloud "
        "(default: the threshold stored with the weights).",
    )
    cascade: bool = Field(
        default=True,
        description="auto route: for prompts the router scores just under its threshold, start "
        "locally, hold back the first --cascade-tokens tokens and escalate to the cloud if the "
        "local model was unsure of them (reasons confident / low-confidence).",
    )
    cascade_band: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="auto route: router scores in [threshold - band, threshold) go through the "
        "confidence cascade (0: none do).",
    )
    cascade_tokens: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Confidence cascade: local tokens generated, and held back from the client, "
        "before deciding.",
    )
    cascade_threshold: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Confidence cascade: mean top-2 probability margin of the first tokens "
        "below which the local start is discarded and the cloud answers.",
    )
    cloud_daily_token_budget: int | None = Field(
        default=None,
        ge=1,
        description="auto route: cloud tokens (prompt + completion) allowed per UTC day; "
        "past it, answer locally (reason budget-exhausted). Unset: no limit.",
    )
    local_overload_queue: int | None = Field(
        default=4,
        ge=0,
        description="auto route: more local requests than this (generating or waiting) "
        "send new ones to the cloud (reason local-overloaded). Unset: never.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest HTTP body accepted (413 above)."
    )
    request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Deadline for one HTTP request, queue wait and generation together "
        "(504 timeout before the first byte, an error event after; generation is cancelled).",
    )
    max_prompt_tokens: int = Field(
        default=32_768,
        ge=16,
        description="Longest prompt accepted on any route, in estimated tokens (400 "
        "prompt_too_long above; the local model's own context is --n-ctx).",
    )
    heartbeat_s: float = Field(default=2.0, gt=0, description="Ping interval on every cloud link.")
    dead_after_s: float = Field(
        default=6.0,
        gt=0,
        description="A worker silent this long is dead: its link is closed and replaced.",
    )
    ice_deadline_s: float = Field(
        default=8.0,
        gt=0,
        description="How long WebRTC (direct, then TURN) may take before the relay through "
        "signaling is used instead.",
    )
    force_relay: bool = Field(
        default=False,
        description="Skip WebRTC and relay every frame through signaling (networks that allow "
        "only outbound TCP; diagnosis).",
    )
    relay_upgrade_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="While on the relay, try WebRTC again this often (on TURN, a direct "
        "path); new requests move to the better link. Doubles after each failure, up to 16x.",
    )
    warm_standby: bool = Field(
        default=True,
        description="Keep a second link open to another worker serving the cloud model, "
        "so that a failover to it needs no handshake.",
    )
    max_failovers: int = Field(
        default=2,
        ge=0,
        description="Cloud retries per request: at most N+1 cloud attempts, before or after "
        "the first token; then an auto request or a stream under way goes local, a forced "
        "cloud request gets 503.",
    )
    failover_wait_s: float = Field(
        default=3.0,
        ge=0,
        description="How long a cloud request waits for a worker when none is linked: a "
        "failed stream, before the local model continues it; a new cloud-only request, "
        "before 503.",
    )
    connect_timeout_s: float = Field(
        default=15.0, gt=0, description="Deadline to open a data channel to a worker."
    )
    first_token_timeout_s: float = Field(
        default=60.0, gt=0, description="Deadline for a cloud worker's first token."
    )
    token_timeout_s: float = Field(
        default=30.0, gt=0, description="Deadline between two chunks of a cloud stream."
    )

    @model_validator(mode="after")
    def _secure_bind(self) -> EdgeSettings:
        if self.api_key is not None and len(self.api_key.get_secret_value()) < MIN_API_KEY_CHARS:
            raise ValueError(f"--api-key must be at least {MIN_API_KEY_CHARS} characters")
        if (
            self.host not in LOOPBACK_HOSTS
            and self.api_key is None
            and not self.insecure_no_api_key
        ):
            raise ValueError(
                f"binding to {self.host} exposes the API beyond this machine: set --api-key "
                "(or TANDEM_API_KEY), or pass --insecure-no-api-key to accept the risk"
            )
        return self
