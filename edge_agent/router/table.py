"""The local model's token-embedding head: what the prompt's words mean, at edge cost.

Hand-made markers and hashed words do not transfer across writers and languages; the
local model's input token embeddings do a little better (leave-one-writer-out, see
docs/router.md). The lab fits a logistic head on the mean of those embeddings over the
routing text's tokens (``routing_text``). Because both the mean and the head are
linear, the head folds into one number per token id: ``log_odds = bias +
mean(weights[id] for id in ids)``. So the edge ships 49,152 floats (192 KiB) instead of
the 49,152 x 576 table (108 MiB as float32), and the cost of a decision is the
tokeniser pass (done by the inference side, which owns the tokeniser) plus a sum.

The ask is also read apart (``focus_text``): in a long message the instruction sits in
its first or last paragraph, around pasted material that says little about how hard
the ask is ("who signed this?" and "translate this formally" over the same letter), and
a mean over the routing text is mostly material. The head reads the mean embedding of
those two paragraphs with weights of its own, one set for long messages and one for
short ones (where the focus is the whole message): two more floats per token id
(format 2), and the same sum.

The weights are only meaningful for the GGUF whose table they were folded from: the
file records that GGUF's SHA-256, and ``load_token_head`` refuses (``None``, and the
router decides on its features alone) for any other model. The router stays pure: it
receives the token ids with the features (``PromptFeatures.ask_tokens``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from edge_agent.router.features import PromptFeatures, extract_features
from edge_agent.router.history import last_ask_request
from edge_agent.router.model import ELABORATION_FLOOR, logit, sigmoid
from shared.messages import GenerateRequest

__all__ = [
    "ASK_CHARS",
    "CONTEXT_CHARS",
    "TOKEN_HEAD_FILE",
    "TokenHead",
    "blend",
    "file_sha256",
    "fitted_for",
    "focus_text",
    "load_token_head",
    "routing_text",
    "with_head_tokens",
]

log = logging.getLogger(__name__)

TOKEN_HEAD_FILE = "router_table.json"
"""The head's metadata, shipped beside ``router_model.json``; its weights are the
``.f32`` file of the same stem (little-endian float32, one per token id)."""

ASK_CHARS = 768
"""Characters of the last user message the head reads (its end: the ask is there)."""
CONTEXT_CHARS = 96
"""Characters of the turn before it read as context (its end)."""

FOCUS_LONG_CHARS = 600
"""A last user message longer than this is read as an ask around pasted material: its
focus is its first and last paragraphs (``focus_text``)."""
FOCUS_PART_CHARS = 250
"""Characters of each of those paragraphs the focus keeps (the first's start, the
last's end)."""

FORMAT_VERSION = 2
"""1: routing weights only; 2: routing, focus-short and focus-long weights."""

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_PARAGRAPH = re.compile(r"\n\s*\n")


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


def _last_user(request: GenerateRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    messages = [m for m in request.messages or () if m.role != "system"]
    return next((str(m.content or "") for m in reversed(messages) if m.role == "user"), "")


def focus_text(request: GenerateRequest) -> tuple[str, bool]:
    """The ask itself, and whether it came from a long message.

    A message up to ``FOCUS_LONG_CHARS`` is its own focus. In a longer one the
    instruction is at one end, around the pasted text: code fences are dropped and
    the focus is the first paragraph's start and, if there are more, the last's end
    (``FOCUS_PART_CHARS`` each): "Translate this letter into German, formal register:"
    or "Who signed it? Just the name." rather than the letter."""
    message = _last_user(request)
    if len(message) <= FOCUS_LONG_CHARS:
        return message, False
    paragraphs = [p.strip() for p in _PARAGRAPH.split(_FENCE.sub("\n\n", message)) if p.strip()]
    if not paragraphs:
        return "", True
    first = paragraphs[0][:FOCUS_PART_CHARS]
    if len(paragraphs) == 1:
        return first, True
    return f"{first}\n\n{paragraphs[-1][-FOCUS_PART_CHARS:]}", True


def with_head_tokens(
    features: PromptFeatures,
    request: GenerateRequest,
    tokenize: Callable[[str], Sequence[int] | None],
    head: TokenHead,
    *,
    last_ask: bool,
) -> PromptFeatures:
    """``features`` with what ``head`` reads, in the local model's token ids: the
    routing text's and, for a head that reads it, the focus text's. With ``last_ask``
    (a second look may follow: the only reader), a conversation's last ask alone too
    (``features.last_ask``), extracted here so that no other decision pays for it.
    ``tokenize`` (the inference side's) answers ``None`` when it cannot yet (the model
    not loaded): then ``features`` unchanged, and the features decide alone."""
    ids = tokenize(routing_text(request))
    if ids is None:
        return features
    alone_request = last_ask_request(request) if last_ask else None
    alone = None
    if alone_request is not None:
        alone_features = extract_features(alone_request)
        alone = with_head_tokens(alone_features, alone_request, tokenize, head, last_ask=False)
    if not head.reads_focus:
        return replace(features, ask_tokens=tuple(ids), last_ask=alone)
    focus, long = focus_text(request)
    focus_ids = tokenize(focus) if focus else []
    if focus_ids is None:
        return features
    return replace(
        features,
        ask_tokens=tuple(ids),
        focus_tokens=tuple(focus_ids),
        focus_long=long,
        last_ask=alone,
    )


def blend(p_features: float, head_log_odds: float, elaboration: bool) -> float:
    """The blended score: the mean of the features' and the head's log-odds, raised to
    ``ELABORATION_FLOOR`` for an elaborating follow-up (the rule holds whatever the
    head reads)."""
    q = sigmoid((logit(p_features) + head_log_odds) / 2)
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
    focus_short: Sequence[float] | None = None
    """Per-token weights of the focus of a short message (``focus_text``); with
    ``focus_long``, or neither (a head that reads the routing text only)."""
    focus_long: Sequence[float] | None = None
    """Per-token weights of the focus of a long message."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("token head threshold must be within (0, 1)")
        if (self.focus_short is None) != (self.focus_long is None):
            raise ValueError("a token head has both focus weight sets or neither")
        for focus in (self.focus_short, self.focus_long):
            if focus is not None and len(focus) != len(self.weights):
                raise ValueError("focus weights must have one value per token id")

    @property
    def reads_focus(self) -> bool:
        """Whether the head also reads the ask apart (``focus_text``)."""
        return self.focus_short is not None

    def log_odds(
        self, ids: Sequence[int], focus: Sequence[int] | None = None, long: bool = False
    ) -> float:
        """The head's log-odds for the routing text's token ids and, for a head that
        reads it, the focus text's (``long``: from a long message). An empty text adds
        nothing; ids outside the vocabulary are skipped: they cannot come from the
        right GGUF."""
        total = self.bias + _mean_of(self.weights, ids)
        if focus is not None and self.focus_short is not None and self.focus_long is not None:
            total += _mean_of(self.focus_long if long else self.focus_short, focus)
        return total

    def write(self, path: Path) -> None:
        """Metadata to ``path`` (JSON), weights beside it (``.f32``: the routing weights,
        then the focus-short and focus-long ones, if any)."""
        meta = {
            "format": FORMAT_VERSION,
            "gguf_sha256": self.gguf_sha256,
            "tokens": len(self.weights),
            "tables": 3 if self.reads_focus else 1,
            "bias": self.bias,
            "threshold": self.threshold,
            "metadata": self.metadata or {},
        }
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        values = array("f", self.weights)
        for focus in (self.focus_short, self.focus_long):
            if focus is not None:
                values.extend(array("f", focus))
        if sys.byteorder != "little":
            values.byteswap()
        path.with_suffix(".f32").write_bytes(values.tobytes())


def _mean_of(weights: Sequence[float], ids: Sequence[int]) -> float:
    n = len(weights)
    values = [weights[i] for i in ids if 0 <= i < n]
    return sum(values) / len(values) if values else 0.0


def _read(meta_text: str, blob: bytes) -> TokenHead:
    meta = json.loads(meta_text)
    if meta.get("format") not in (1, FORMAT_VERSION):
        raise ValueError(f"token head format {meta.get('format')!r} is not supported")
    values = array("f")
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    tokens, tables = int(meta["tokens"]), int(meta.get("tables", 1))
    if tables not in (1, 3) or len(values) != tokens * tables:
        raise ValueError(
            f"token head has {len(values)} weights, its metadata says {tables} x {tokens}"
        )
    focus = [values[k * tokens : (k + 1) * tokens] for k in (1, 2)] if tables == 3 else None
    return TokenHead(
        gguf_sha256=str(meta["gguf_sha256"]),
        weights=values[:tokens] if tables == 3 else values,
        bias=float(meta["bias"]),
        threshold=float(meta["threshold"]),
        metadata=dict(meta.get("metadata") or {}),
        focus_short=focus[0] if focus else None,
        focus_long=focus[1] if focus else None,
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
    if not fitted_for(
        model_path, head.gguf_sha256, "the token-embedding head", "routing on prompt features only"
    ):
        return None
    return head


def fitted_for(model_path: Path, fitted_sha256: str, what: str, instead: str) -> bool:
    """Whether ``what`` (a head fitted for the GGUF ``fitted_sha256``) reads the local
    model at ``model_path``; if not, a log line says so and what the router does
    ``instead``."""
    ours = file_sha256(model_path)
    if ours == fitted_sha256:
        return True
    log.info(
        "router: %s was fitted for GGUF sha256 %s, the local model %s is %s; %s",
        what,
        fitted_sha256[:12],
        model_path.name,
        ours[:12],
        instead,
    )
    return False
