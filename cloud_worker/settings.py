"""Cloud worker settings: every field is a ``--flag``, a ``TANDEM_<NAME>`` env var and a
key in the ``--config`` TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.settings import PeerSettings

__all__ = ["WorkerSettings"]


class WorkerSettings(PeerSettings):
    """Configuration of ``cloud-worker serve``."""

    signaling: str = Field(
        default="ws://127.0.0.1:8765/v1/signal",
        description="Signaling server WebSocket URL: wss:// across a network (ws:// on "
        "loopback only, unless --insecure-signaling). Several instances of one signaling "
        "cluster: repeat the flag or separate URLs with commas; the worker moves to the next "
        "when its connection is lost.",
        json_schema_extra={"repeatable": True},
    )
    backend: Literal["llama", "openai"] = Field(
        default="llama",
        description="llama: run a GGUF here with llama-cpp-python (--model). openai: front an "
        "OpenAI-compatible engine on this machine (vLLM, SGLang, llama-server; --upstream-url).",
    )
    upstream_url: str = Field(
        default="http://127.0.0.1:8000/v1",
        description="--backend openai: the engine's OpenAI base URL (ending in /v1).",
    )
    upstream_model: str | None = Field(
        default=None,
        description="--backend openai: the engine's model to serve and advertise "
        "(default: every model its /v1/models lists).",
    )
    upstream_api_key_file: Path | None = Field(
        default=None,
        description="--backend openai: a file holding the engine's API key (vLLM --api-key).",
    )
    max_concurrency: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="--backend openai: streams sent to the engine at once (it batches them); "
        "advertised to signaling as this worker's capacity.",
    )
    upstream_continuation: Literal["auto", "chat", "prefill", "completions", "refuse"] = Field(
        default="auto",
        description="--backend openai: how the engine resumes a stream another worker "
        "started. chat: continue_final_message (vLLM, SGLang); prefill: a final assistant "
        "message (llama-server); completions: the prompt rendered with "
        "--upstream-chat-template; refuse: never here; auto: ask the engine what it is.",
    )
    upstream_chat_template: Path | None = Field(
        default=None,
        description="--backend openai: the model's chat template, a Jinja file or a GGUF "
        "carrying it, for --upstream-continuation completions.",
    )
    upstream_health_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="--backend openai: how often the engine's /v1/models is asked whether "
        "it still answers (and how often it is asked at start, while it loads).",
    )
    upstream_unhealthy_after: int = Field(
        default=3,
        ge=1,
        description="--backend openai: failed asks in a row after which the engine is down: "
        "the worker drains its edges and reports not ready until it answers again.",
    )
    upstream_first_token_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="--backend openai: deadline for the engine's first token of a stream.",
    )
    upstream_token_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="--backend openai: deadline between two chunks of the engine's stream.",
    )
    model: Path | None = Field(
        default=None,
        description="--backend llama: GGUF model to serve (default: the bundled "
        "SmolLM2-135M-Instruct).",
    )
    served_name: str | None = Field(
        default=None,
        description="Name to advertise the model under (default: file name without .gguf).",
    )
    n_ctx: int = Field(
        default=4096, ge=128, description="Context window per generation, in tokens."
    )
    n_gpu_layers: int = Field(
        default=0, ge=-1, description="Layers to offload to the GPU (-1 = all)."
    )
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads per model instance.")
    parallel: int = Field(
        default=1, ge=1, le=64, description="Concurrent generations (one model instance each)."
    )
    max_queue: int = Field(
        default=16,
        ge=0,
        description="Requests allowed to wait for a free instance; more are refused as overloaded.",
    )
    max_queued_chunks: int = Field(
        default=64,
        ge=1,
        le=65_536,
        description="Token chunks one stream may hold while its edge link is slower than the "
        "model; then generation waits for the link (nothing is dropped).",
    )
    max_streams_per_peer: int | None = Field(
        default=None,
        ge=1,
        description="Concurrent streams one edge may have on this worker, across its links "
        "(more are refused as overloaded, and the edge tries another worker). Default: "
        "--edge-share of what the worker takes at once (capacity plus --max-queue).",
    )
    edge_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of this worker's intake (streams generating and waiting) one edge "
        "may hold when --max-streams-per-peer is unset, so that one edge cannot refuse the "
        "others (1: no share).",
    )
    max_links_per_edge: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Links (WebRTC or relayed) one edge may hold to this worker at once, "
        "offers being answered included; its further offers are not answered (each costs "
        "a peer connection and a TURN allocation).",
    )
    peer_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="An edge silent this long (edges ping every few seconds) is dropped "
        "and its streams cancelled.",
    )
    connect_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Deadline for an edge's data channel to open after the answer.",
    )
    drain_grace_s: float = Field(
        default=25.0,
        ge=0,
        description="On SIGTERM or a spot notice, time given to running streams to finish; "
        "the rest are handed back to the edge as retryable (GCP gives 30 s, AWS 120 s).",
    )
    spot: Literal["none", "auto", "aws", "gcp", "azure"] = Field(
        default="none",
        description="Watch this cloud's metadata service for spot preemption notices "
        "(AWS IMDSv2 instance-action, GCP instance/preempted, Azure Scheduled Events "
        "Preempt); auto: find out which cloud this is.",
    )
    spot_metadata_url: str | None = Field(
        default=None,
        description="Metadata service base URL (default: http://169.254.169.254 on AWS and "
        "Azure, http://metadata.google.internal on GCP).",
    )
    spot_poll_s: float = Field(default=5.0, gt=0, description="How often to poll for a notice.")
    host: str = Field(
        default="127.0.0.1", description="Address of the /healthz and /metrics HTTP endpoint."
    )
    port: int = Field(
        default=8766, ge=0, le=65535, description="Port of the /healthz and /metrics endpoint."
    )
