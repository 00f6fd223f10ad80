"""The local model's token-embedding head: what the prompt's words mean, at edge cost.

Hand-made markers and hashed words do not transfer across writers and languages; the
local model's input token embeddings do a little better (leave-one-writer-out, see
docs/router.md). The lab fits a logistic head on the mean of those embeddings over the
routing text's tokens (``routing_text``). Because both the mean and the head are
linear, the head folds into one number per token id: ``log_odds = bias +
mean(weights[id] for id in ids)``. So the edge ships 49,152 floats (192 KiB) instead of
the 49,152 x 576 table (108 MiB as float32), and the cost of a decision is the
tokeniser pass (done by the inference side, which owns the tokeniser) plus a sum.

The weights are only meaningful for the GGUF whose table they were folded from: the
file records that GGUF's SHA-256, and ``load_token_head`` refuses (``None``, and the
router decides on its features alone) for any other model. The router stays pure: it
receives the token ids with the features (``PromptFeatures.ask_tokens``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from edge_agent.router.model import ELABORATION_FLOOR, sigmoid
from shared.messages import GenerateRequest

__all__ = [
    "ASK_CHARS",
    "CONTEXT_CHARS",
    "TOKEN_HEAD_FILE",
    "TokenHead",
    "blend",
    "file_sha256",
    "load_token_head",
    "routing_text",
]

log = logging.getLogger(__name__)

TOKEN_HEAD_FILE = "router_table.json"
"""The head's metadata, shipped beside ``router_model.json``; its weights are the
``.f32`` file of the same stem (little-endian float32, one per token id)."""

ASK_CHARS = 768
"""Characters of the last user message the head reads (its end: the ask is there)."""
CONTEXT_CHARS = 96
"""Characters of the turn before it read as context (its end)."""

FORMAT_VERSION = 1


def routing_text(request: GenerateRequest) -> str:
    """The text the head reads: the last user message's end, after the end of the turn
    before it, so an easy follow-up after hard turns reads as the follow-up it is."""
    if request.prompt is not None:
        return request.prompt[-ASK_CHARS:]
    messages = [m for m in request.messages or () if m.role != "system"]
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    if last < 0:
        return ""
    ask = str(messages[last].content or "")[-ASK_CHARS:]
    if last == 0:
        return ask
    before = str(messages[last - 1].content or "")[-CONTEXT_CHARS:]
    return f"{before}\n\n{ask}"


def blend(p_features: float, head_log_odds: float, elaboration: bool) -> float:
    """The blended score: the mean of the features' and the head's log-odds, raised to
    ``ELABORATION_FLOOR`` for an elaborating follow-up (the rule holds whatever the
    head reads)."""
    p = min(max(p_features, 1e-9), 1 - 1e-9)
    z = (math.log(p / (1 - p)) + head_log_odds) / 2
    q = sigmoid(z)
    return max(q, ELABORATION_FLOOR) if elaboration else q


@dataclass(frozen=True)
class TokenHead:
    """Per-token log-odds of "cloud" for one GGUF's vocabulary, and the threshold of the
    blended score (features and head, their log-odds averaged)."""

    gguf_sha256: str
    weights: Sequence[float]
    """One per token id of that GGUF's vocabulary."""
    bias: float
    threshold: float
    """Blended probability at or above which a prompt goes to the cloud (chosen
    leave-one-writer-out on the blended scores)."""
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("token head threshold must be within (0, 1)")

    def log_odds(self, ids: Sequence[int]) -> float:
        """The head's log-odds for the routing text's token ids (the bias alone for none;
        ids outside the vocabulary are skipped: they cannot come from the right GGUF)."""
        weights = self.weights
        n = len(weights)
        values = [weights[i] for i in ids if 0 <= i < n]
        if not values:
            return self.bias
        return self.bias + sum(values) / len(values)

    def write(self, path: Path) -> None:
        """Metadata to ``path`` (JSON), weights beside it (``.f32``)."""
        meta = {
            "format": FORMAT_VERSION,
            "gguf_sha256": self.gguf_sha256,
            "tokens": len(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "metadata": self.metadata or {},
        }
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        values = array("f", self.weights)
        if sys.byteorder != "little":
            values.byteswap()
        path.with_suffix(".f32").write_bytes(values.tobytes())


def _read(meta_text: str, blob: bytes) -> TokenHead:
    meta = json.loads(meta_text)
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"token head format {meta.get('format')!r} is not supported")
    values = array("f")
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    if len(values) != int(meta["tokens"]):
        raise ValueError(
            f"token head has {len(values)} weights, its metadata says {meta['tokens']}"
        )
    return TokenHead(
        gguf_sha256=str(meta["gguf_sha256"]),
        weights=values,
        bias=float(meta["bias"]),
        threshold=float(meta["threshold"]),
        metadata=dict(meta.get("metadata") or {}),
    )


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per process for an unchanged file (a GGUF is
    ~100 MB: agents built in one process, as tests do, hash it once)."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def load_token_head(model_path: Path | None, path: Path | None = None) -> TokenHead | None:
    """The head for the GGUF at ``model_path``, from ``path`` or the bundled file; ``None``
    (with a log line saying why) when there is no model file or the head was folded
    from another GGUF: the router then decides on its features alone."""
    if model_path is None or not model_path.is_file():
        return None
    if path is None:
        package = resources.files("edge_agent.router")
        meta_text = package.joinpath(TOKEN_HEAD_FILE).read_text(encoding="utf-8")
        blob = package.joinpath(Path(TOKEN_HEAD_FILE).with_suffix(".f32").name).read_bytes()
    else:
        meta_text = path.read_text(encoding="utf-8")
        blob = path.with_suffix(".f32").read_bytes()
    head = _read(meta_text, blob)
    ours = file_sha256(model_path)
    if ours != head.gguf_sha256:
        log.info(
            "router: the token-embedding head was fitted for GGUF sha256 %s, the local model "
            "%s is %s; routing on prompt features only",
            head.gguf_sha256[:12],
            model_path.name,
            ours[:12],
        )
        return None
    return head
