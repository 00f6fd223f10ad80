"""The confidence cascade's decision: keep a local start, or escalate it. Pure.

For prompts the learned router scores just under its threshold (``Decision.cascade``),
``engines.cascade.CascadeEngine`` starts the local model, holds back its first
``n_tokens`` tokens, and asks ``judge_start`` whether the small model was sure of them.
Ramírez et al. (COLM 2024) found the small model's own token probabilities the strongest
cheap deferral signal; here it is the mean top-2 margin over the first tokens (see
``cascade_confidence`` for why that one).

An escalated start is discarded, not continued by the cloud: the client has seen none of
it (it was held back), continuing would need the wire protocol to carry an assistant
prefix, and it would anchor the strong model on the very words the small one was unsure
of. Discarding costs only the ``n_tokens`` generated locally (tens of milliseconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_agent.router.policy import Reason
from edge_agent.settings import EdgeSettings

if TYPE_CHECKING:
    from inference import TokenConfidence

__all__ = ["CascadeConfig", "cascade_confidence", "judge_start"]


@dataclass(frozen=True)
class CascadeConfig:
    """How the cascade watches a local start; every field is an edge setting."""

    enabled: bool = True
    n_tokens: int = 8
    """Tokens generated (and held back from the client) before deciding."""
    threshold: float = 0.15
    """Confidence below which the start is escalated."""

    def __post_init__(self) -> None:
        if self.n_tokens < 1:
            raise ValueError("the cascade watches at least one token")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("the cascade threshold must be within [0, 1]")

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> CascadeConfig:
        return cls(
            enabled=settings.cascade,
            n_tokens=settings.cascade_tokens,
            threshold=settings.cascade_threshold,
        )


def cascade_confidence(values: Sequence[TokenConfidence]) -> float:
    """The mean top-2 margin of ``values``, in [0, 1]; 1 for none (nothing to doubt).

    The margin rather than the chosen token's probability because it does not depend on
    which token sampling happened to pick (requests default to temperature 0.7), and the
    mean rather than the minimum because one hesitant token (a name, a number format) is
    common in good answers, while a hesitant *start* is not.
    """
    if not values:
        return 1.0
    return math.fsum(v.margin for v in values) / len(values)


def judge_start(values: Sequence[TokenConfidence], config: CascadeConfig) -> Reason:
    """``CONFIDENT`` (keep the local start) or ``LOW_CONFIDENCE`` (escalate it)."""
    if cascade_confidence(values[: config.n_tokens]) >= config.threshold:
        return Reason.CONFIDENT
    return Reason.LOW_CONFIDENCE
