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
        default="ws://127.0.0.1:8765/v1/signal", description="Signaling server WebSocket URL."
    )
    model: Path | None = Field(
        default=None,
        description="GGUF model to serve (default: the bundled SmolLM2-135M-Instruct).",
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
    max_streams_per_peer: int = Field(
        default=32, ge=1, description="Concurrent streams one edge may have open on this worker."
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
    spot: Literal["none", "aws", "gcp"] = Field(
        default="none",
        description="Watch this cloud's metadata service for spot preemption notices.",
    )
    spot_metadata_url: str | None = Field(
        default=None,
        description="Metadata service base URL (default: http://169.254.169.254 on AWS, "
        "http://metadata.google.internal on GCP).",
    )
    spot_poll_s: float = Field(default=5.0, gt=0, description="How often to poll for a notice.")
    host: str = Field(
        default="127.0.0.1", description="Address of the /healthz and /metrics HTTP endpoint."
    )
    port: int = Field(
        default=8766, ge=0, le=65535, description="Port of the /healthz and /metrics endpoint."
    )
