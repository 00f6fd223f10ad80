"""The learned router's model: logistic regression over ``feature_vector``, pure Python.

A linear model because it is enough (160 labelled prompts do not support more), it costs
twenty multiply-adds (microseconds on a Pi, no numpy), and every decision can be
explained: each feature's contribution ``weight * standardised value`` is known, so the
largest one names the reason. The weights are a small JSON file shipped in the package
(``router_model.json``) and written by ``python -m edge_agent.router.train``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edge_agent.router.boost import Trees
from edge_agent.router.features import FEATURE_NAMES, PromptFeatures, feature_vector
from edge_agent.router.terms import TermTable

__all__ = ["BUNDLED_MODEL_FILE", "LinearModel", "load_model", "sigmoid"]

BUNDLED_MODEL_FILE = "router_model.json"
"""The weights shipped in the ``edge_agent.router`` package."""

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LinearModel:
    """``p(cloud) = sigmoid(bias + sum(w_i * (x_i - mean_i) / scale_i))``.

    ``threshold`` is the probability at or above which a request goes to the cloud, as
    chosen by the training script; the edge may override it with a setting.
    """

    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    bias: float
    threshold: float
    metadata: Mapping[str, Any] | None = None
    """What the training script recorded (data, cross-validated figures); never used to
    score."""
    terms: TermTable | None = None
    """The word-evidence table behind the ``term_evidence`` feature."""
    trees: Trees | None = None
    """Boosted trees over the same vector: when present they give the score, and the
    linear weights only explain it (see ``boost``)."""

    def vector(self, features: PromptFeatures) -> tuple[float, ...]:
        """``features`` as this model's input (with its word evidence)."""
        return feature_vector(features, self.terms)

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if not (len(self.weights) == len(self.means) == len(self.scales) == n):
            raise ValueError("weights, means and scales must have one entry per feature")
        if any(s <= 0 for s in self.scales):
            raise ValueError("feature scales must be > 0")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be within (0, 1)")

    def contributions(self, x: Sequence[float]) -> list[float]:
        """Each feature's additive share of the log-odds of "cloud"."""
        return [
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, x, self.means, self.scales, strict=True)
        ]

    def probability(self, x: Sequence[float]) -> float:
        """Probability that the request needs the cloud model."""
        if self.trees is not None:
            return sigmoid(self.trees.log_odds(x))
        return sigmoid(self.bias + math.fsum(self.contributions(x)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "features": list(self.feature_names),
            "weights": list(self.weights),
            "means": list(self.means),
            "scales": list(self.scales),
            "bias": self.bias,
            "threshold": self.threshold,
            "metadata": dict(self.metadata or {}),
            "terms": self.terms.to_dict() if self.terms is not None else {},
            "trees": self.trees.to_dict() if self.trees is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        """Parse weights; refuses a file written for other features (stale weights would
        silently score the wrong inputs)."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"router model format {data.get('format')!r} is not supported")
        names = tuple(str(n) for n in data["features"])
        if names != FEATURE_NAMES:
            raise ValueError(
                "router model was trained on other features; retrain it with "
                "python -m edge_agent.router.train"
            )
        return cls(
            feature_names=names,
            weights=tuple(float(w) for w in data["weights"]),
            means=tuple(float(m) for m in data["means"]),
            scales=tuple(float(s) for s in data["scales"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            metadata=data.get("metadata"),
            terms=TermTable.from_dict(data.get("terms") or {}),
            trees=Trees.from_dict(data["trees"]) if data.get("trees") else None,
        )


def load_model(path: Path | None = None) -> LinearModel:
    """Read weights from ``path``, or the bundled ones. The only file the router reads,
    once, when the agent is built (never per request)."""
    if path is None:
        text = resources.files("edge_agent.router").joinpath(BUNDLED_MODEL_FILE).read_text()
    else:
        text = path.read_text(encoding="utf-8")
    return LinearModel.from_dict(json.loads(text))


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
