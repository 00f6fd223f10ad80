"""How sure the model was of each of its first tokens: the confidence cascade's signal.

The edge's router is unsure about some prompts; for those it starts the small model and
watches how peaked its next-token distributions are over the first few tokens (Ramírez
et al., COLM 2024: the small model's own token probabilities are a cheap, strong
deferral signal). Reading them costs one pass over the vocabulary per token (about
0.1 ms for SmolLM2's 49k entries), so the runner does it only for the first
``ConfidenceProbe.n_tokens`` tokens of requests that ask for it.

This is an engine-internal side channel: nothing here goes on the wire, and the values
come from the raw logits, so they do not depend on the request's temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy itself is imported where logits are read: not at start-up
    import numpy as np
    import numpy.typing as npt

__all__ = ["ConfidenceProbe", "TokenConfidence", "token_confidence"]


@dataclass(frozen=True)
class TokenConfidence:
    """The model's certainty about one generated token."""

    logprob: float
    """Natural log-probability of the token actually chosen (raw softmax, no temperature)."""
    margin: float
    """Probability of the most likely token minus that of the second: near 1 when one
    continuation dominates, near 0 when two compete."""


@dataclass
class ConfidenceProbe:
    """Asks a runner for the confidence of a stream's first ``n_tokens`` tokens.

    The runner's thread appends to ``values`` before it hands over the chunk holding the
    same token, so a consumer that has received a chunk can read the values of every
    token in it. End-of-generation tokens count: a model confidently stopping is signal.
    Owned by one request; not shared between streams.
    """

    n_tokens: int
    values: list[TokenConfidence] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n_tokens < 1:
            raise ValueError("a confidence probe watches at least one token")

    @property
    def full(self) -> bool:
        """Whether every watched token has its value."""
        return len(self.values) >= self.n_tokens

    def wants(self) -> bool:
        """Whether the next token's confidence should still be computed."""
        return len(self.values) < self.n_tokens


def token_confidence(logits: npt.NDArray[np.float32], token: int) -> TokenConfidence:
    """Confidence of ``token`` under the distribution ``softmax(logits)``.

    One ``max``, one ``exp``-and-sum and one partial sort over the vocabulary, in numpy
    (already a llama-cpp-python dependency), in float64 to keep the log-sum-exp exact.
    """
    import numpy as np

    values = logits.astype(np.float64, copy=False)
    top = float(values.max())
    log_z = top + math.log(float(np.exp(values - top).sum()))
    second = float(np.partition(values, -2)[-2]) if values.size > 1 else -math.inf
    margin = math.exp(top - log_z) - math.exp(second - log_z)
    return TokenConfidence(logprob=float(values[token]) - log_z, margin=margin)
