"""Edge agent settings: every field is a ``--flag``, a ``TANDEM_<NAME>`` env var and a
key in the ``--config`` TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.messages import MAX_STOP_CHARS, MAX_STOPS
from shared.settings import PeerSettings

__all__ = ["LOOPBACK_HOSTS", "MIN_API_KEY_CHARS", "EdgeSettings", "split_host"]

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
    kv_cache_mb: int = Field(
        default=0,
        ge=0,
        le=65_536,
        description="Keep recent conversations' KV state for the local model, up to this "
        "many MB (about 23 KB a token with the bundled model), so that a conversation "
        "taking turns with others does not re-read its history; 0: off.",
    )
    signaling: str | None = Field(
        default=None,
        description="Signaling server URL, e.g. wss://signal.example.com:8765/v1/signal (ws:// "
        "on loopback only, unless --insecure-signaling). Several instances of one signaling "
        "cluster: repeat the flag or separate URLs with commas; the edge moves to the next "
        "when its connection is lost. Unset: local only.",
        json_schema_extra={"repeatable": True},
    )
    cloud_model: str = Field(
        default="",
        max_length=1024,
        description="Model to ask cloud workers for ('' = whatever they serve).",
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
    structured_to_cloud: bool = Field(
        default=True,
        description="auto route: requests constrained to JSON (response_format, Ollama "
        "format, tools) go to the cloud (reason structured-output).",
    )
    router_second_look: bool = Field(
        default=True,
        description="auto route: a prompt the router is not sure of starts locally, and the "
        "local model's reading of it after the prefill decides whether it escalates (reason "
        "second-look); only for a local GGUF the router has a prompt head for.",
    )
    router_second_look_max_prompt_tokens: int = Field(
        default=1024,
        ge=0,
        description="auto route: longer prompts (estimated) get no second look, so that an "
        "escalation never waits for a long local prefill.",
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
        "where no second look follows (default: the threshold stored with the weights); "
        "with a look, --router-second-look-threshold decides.",
    )
    router_second_look_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="auto route: the second look's blended score at or above which a prompt "
        "escalates (default: the threshold stored with the prompt head). Higher keeps more "
        "prompts local at the price of cloud recall; python -m router_lab.tradeoff shows "
        "what each gives on people the router has never met.",
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
    max_stop_sequences: int = Field(
        default=16,
        ge=0,
        le=MAX_STOPS,
        description="Stop strings one request may carry (OpenAI 'stop', Ollama "
        "'options.stop'); more: 400. Each costs the model a scan per token.",
    )
    max_stop_chars: int = Field(
        default=256,
        ge=1,
        le=MAX_STOP_CHARS,
        description="Longest stop string accepted, in characters (400 above). Stop strings "
        "also count against --max-prompt-tokens.",
    )
    max_stream_tokens: int = Field(
        default=65_536,
        ge=16,
        le=2**31 - 1,
        description="Most tokens the edge takes from one cloud stream: a request's "
        "max_tokens when it sets one (a worker that sends more breaks the protocol: its "
        "link is dropped and the stream fails over), else this; past it the stream ends "
        "(finish_reason length) and the worker is told to stop.",
    )
    max_chars_per_token: int = Field(
        default=128,
        ge=16,
        le=4096,
        description="Most text per token a worker may send, on average over a stream (no "
        "vocabulary has longer tokens); more breaks the protocol: the link is dropped. With "
        "--max-stream-tokens it bounds what one answer can hold in memory.",
    )
    allowed_host: str | None = Field(
        default=None,
        description="Comma-separated Host names (name: any port; name:port: that port) the "
        "API answers to besides localhost, 127.0.0.1, [::1], the bind address and the "
        "address a client connected to; any other Host gets 403 (DNS rebinding). Set the "
        "names a reverse proxy or the LAN uses, e.g. 'edge.lan,edge.example.com:443'.",
    )
    cors_origin: str | None = Field(
        default=None,
        description="Comma-separated web origins (scheme://host[:port]) whose pages may "
        "call the API from a browser (CORS preflight and headers are answered for them); "
        "a request with any other Origin gets 403.",
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
    embedding_model: Path | None = Field(
        default=None,
        description="GGUF serving /v1/embeddings and /api/embed (a dedicated embedding "
        "model, e.g. nomic-embed-text or bge); default: the local chat model's file, "
        "mean-pooled. Loaded on the first embedding request.",
    )
    embedding_max_inputs: int = Field(
        default=64,
        ge=1,
        le=2048,
        description="Inputs one embedding request may carry (400 above).",
    )
    embedding_max_input_tokens: int = Field(
        default=512,
        ge=8,
        le=32_768,
        description="Tokens per embedding input: longer ones get 400 (OpenAI; Ollama "
        "with truncate=false) or are cut (Ollama's default). It sizes the embedding "
        "context: the bundled model needs about 230 MB at 512, 120 MB at 256.",
    )
    embedding_threads: int = Field(
        default=1,
        ge=1,
        description="CPU threads for embeddings, beside the chat model's --n-threads.",
    )
    embedding_max_queue: int = Field(
        default=4,
        ge=0,
        description="Embedding requests allowed to wait while one runs; more get 429.",
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
        description="With --no-relay-first: how long WebRTC (direct, then TURN) may take "
        "before the relay through signaling is used instead (also the standby's deadline).",
    )
    force_relay: bool = Field(
        default=False,
        description="Skip WebRTC and relay every frame through signaling (networks that allow "
        "only outbound TCP; diagnosis).",
    )
    relay_first: bool = Field(
        default=True,
        description="Serve the first cloud requests over the end-to-end encrypted relay "
        "through signaling as soon as a worker is matched, and negotiate WebRTC beside it; "
        "new requests move to WebRTC once it is up. --no-relay-first: try WebRTC for "
        "--ice-deadline-s first (less relay bandwidth on signaling, a slower first answer).",
    )
    relay_upgrade_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Wait before retrying a failed upgrade (relay to WebRTC, TURN to "
        "direct); doubles after each failure, up to 16x. New requests move to the better link.",
    )
    upgrade_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long one background WebRTC attempt may take (nobody waits on it: "
        "TURN over TCP gets the time it needs).",
    )
    address_poll_s: float = Field(
        default=1.0,
        ge=0,
        description="Check this host's IP addresses this often; when one goes away (Wi-Fi "
        "to LTE, a DHCP renewal) the edge reconnects to signaling and opens a new cloud link "
        "at once instead of waiting for the old one to time out. 0: off.",
    )
    network_change_check_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="After a network change (see --address-poll-s), a cloud link whose "
        "worker answers nothing for this long is closed at once, so that its streams fail "
        "over now instead of after --dead-after-s.",
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
    status_recent_requests: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Recent requests kept in memory for GET /status (route, reason, "
        "latency; never prompts); the oldest are dropped.",
    )

    @field_validator("allowed_host")
    @classmethod
    def _host_names(cls, value: str | None) -> str | None:
        for entry in _entries(value):
            name, port = split_host(entry)
            if not name or port == -1 or any(c in name for c in "/@*?#"):
                raise ValueError(f"--allowed-host: {entry!r} is not a host name or name:port")
        return value

    @field_validator("cors_origin")
    @classmethod
    def _origins(cls, value: str | None) -> str | None:
        for entry in _entries(value):
            if normalize_origin(entry) is None:
                raise ValueError(
                    f"--cors-origin: {entry!r} is not an origin (scheme://host[:port], "
                    "http or https, no path; '*' is not accepted: list the origins)"
                )
        return value

    @property
    def allowed_hosts(self) -> tuple[tuple[str, int | None], ...]:
        """``--allowed-host`` as (lower-case name, port or ``None``: any port)."""
        return tuple(split_host(e) for e in _entries(self.allowed_host))

    @property
    def cors_origins(self) -> frozenset[str]:
        """``--cors-origin``, each as browsers serialise an ``Origin`` header."""
        return frozenset(o for e in _entries(self.cors_origin) if (o := normalize_origin(e)))

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


def _entries(value: str | None) -> list[str]:
    return [e.strip() for e in (value or "").split(",") if e.strip()]


def split_host(value: str) -> tuple[str, int | None]:
    """``Host``-header syntax to (lower-case name without brackets, port or ``None``);
    port ``-1`` when it is not a number."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6] or [v6]:port
        name, _, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            return name, -1
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    else:  # a bare name, or a bare IPv6 address (not valid in a Host header)
        name, port_text = value, None
    if port_text is None:
        return name, None
    return name, int(port_text) if port_text.isdigit() and int(port_text) < 65536 else -1


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """``value`` as a browser writes it in ``Origin`` (lower case, no default port), or
    ``None`` if it is not an http(s) origin."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme, parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query:
        return None
    if parts.fragment or parts.username is not None or "*" in host:
        return None
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return f"{scheme}://{shown}"
