"""The router's second look: the local model's own reading of a prompt it was unsure of.

The first look (``policy.Router``) scores a prompt from its features and the token head
in well under a millisecond. Where that score is not sure of the cloud (below
``PromptHead.sure``), the prompt starts locally and the runner hands the router the
model's last hidden state at the end of the templated conversation, once the prefill is
done and before any token is sent (``inference.prompt_state``). A logistic head on that
state joins the first look's two scores (the mean of the three log-odds, the head's
weighted by ``PromptHead.weight``) and the blend
decides: below ``PromptHead.threshold`` the local answer goes on; at or above it, the
request goes to the cloud having cost one local prefill.

Why: leave-one-writer-out, the state reads what hand-made features miss across writers
and languages (docs/router.md, "Round 6"); and the prefill is work a local answer does
anyway, so a prompt that stays local pays nothing for the look.

The head is fitted for one GGUF (its SHA-256, as the token head is); any other local
model gets no second look and the first look's threshold decides alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.router.model import sigmoid
from edge_agent.router.table import fitted_for

__all__ = ["PROMPT_HEAD_FILE", "PromptHead", "SecondLook", "load_prompt_head"]

log = logging.getLogger(__name__)

PROMPT_HEAD_FILE = "router_prompt_head.json"


@dataclass(frozen=True, eq=False)  # compared by identity: its weights are an array
class PromptHead:
    """A logistic head on one GGUF's prompt state, and the two thresholds around it."""

    gguf_sha256: str
    weights: npt.NDArray[np.float64]
    """One per dimension of the state it reads: ``n_embd`` per tensor."""
    bias: float
    sure: float
    """First-look score at or above which the prompt goes to the cloud without a look."""
    threshold: float
    """Blended score (first look's two and this head's) at or above which it escalates."""
    metadata: dict[str, Any] | None = None
    tensor: str = "result_norm"
    """The state it reads, by llama.cpp's name: ``result_norm``, the final normed state,
    or ``l_out-N``, block N's output; several joined by commas are read side by side
    (``inference.state_tap``)."""
    weight: float = 1.0
    """This head's share of the blend against the first look's two scores (one each)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or not 0.0 < self.sure <= 1.0:
            raise ValueError("the prompt head's thresholds must be within (0, 1)")
        if not self.weight > 0.0:
            raise ValueError("the prompt head's weight must be positive")
        if not all(self.tensor.split(",")):
            raise ValueError(f"the prompt head's tensor names one it cannot: {self.tensor!r}")

    def log_odds(self, state: npt.NDArray[np.float32]) -> float:
        """This head's log-odds of "cloud" for a prompt state."""
        if state.shape != self.weights.shape:
            raise ValueError(
                f"a prompt state of {state.shape[0]} dimensions for a head of "
                f"{self.weights.shape[0]}"
            )
        return float(np.dot(self.weights, state.astype(np.float64)) + self.bias)

    @classmethod
    def from_json(cls, text: str) -> PromptHead:
        data = json.loads(text)
        return cls(
            gguf_sha256=data["gguf_sha256"],
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            sure=float(data["sure"]),
            threshold=float(data["threshold"]),
            metadata=data.get("metadata"),
            tensor=str(data.get("tensor", "result_norm")),
            weight=float(data.get("weight", 1.0)),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "gguf_sha256": self.gguf_sha256,
                "bias": self.bias,
                "sure": self.sure,
                "threshold": self.threshold,
                "tensor": self.tensor,
                "weight": self.weight,
                "metadata": self.metadata,
                "weights": [round(float(w), 7) for w in self.weights],
            },
            indent=1,
        )


@dataclass(frozen=True)
class SecondLook:
    """A first look that was not sure, waiting for the prompt state to finish deciding.

    No elaboration floor here, nor in the first look's ``sure`` test when a look may
    follow: the state reads the whole conversation, so it can tell an easy follow-up
    after a long answer from a real elaboration, which the hand-made rule cannot
    (leave-one-writer-out, docs/router.md round 6: the contrast writer's kept 0.52 →
    0.58, the means unchanged within noise)."""

    head: PromptHead
    features_log_odds: float
    token_log_odds: float

    def score(self, state: npt.NDArray[np.float32]) -> float:
        """The blended probability that the prompt needs the cloud: the weighted mean of
        the three log-odds."""
        w = self.head.weight
        z = self.features_log_odds + self.token_log_odds + w * self.head.log_odds(state)
        return sigmoid(z / (2 + w))

    def escalates(self, p: float) -> bool:
        return p >= self.head.threshold


def load_prompt_head(model_path: Path | None, path: Path | None = None) -> PromptHead | None:
    """The head for the GGUF at ``model_path``, from ``path`` or the bundled file; ``None``
    (logged) when there is none for that GGUF."""
    if model_path is None or not model_path.is_file():
        return None
    source = (
        resources.files("edge_agent.router").joinpath(PROMPT_HEAD_FILE) if path is None else path
    )
    try:
        head = PromptHead.from_json(source.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("router: no second look: cannot read its head %s (%s)", source, exc)
        return None
    if not fitted_for(model_path, head.gguf_sha256, "the second look's head", "no second look"):
        return None
    return head
