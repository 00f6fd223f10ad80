"""The learned router's weights: boosted trees that score, a logistic model that explains.

One JSON file (``router_model.json``, shipped in the package, written by
``python -m router_lab.train``) holds everything the router learned:

- the word-evidence table (``terms``) behind the ``term_evidence`` feature;
- boosted trees over the feature vector (``trees``), which give ``p(cloud)``: small trees
  can say "long, *unless* the closing ask is trivial", which no additive model can;
- a logistic regression over the same vector (``Logistic``), which explains: its
  per-feature contributions name the reason for an escalation that no content marker
  names (``policy.Router._explain``). It also scores, for weights trained without trees
  (``--no-trees`` in the lab);
- the threshold the training chose, the names of the features it was trained on, and the
  hash of the word lists (``markers.Lexicon.sha256``) its features came from.

Loading checks the last two against this code and refuses a mismatch: stale weights
would otherwise silently score the wrong inputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edge_agent.router.features import PromptFeatures
from edge_agent.router.markers import bundled_lexicon
from edge_agent.router.terms import TermTable
from edge_agent.router.trees import Trees
from edge_agent.router.vector import FEATURE_NAMES, feature_vector

__all__ = [
    "BUNDLED_MODEL_FILE",
    "ELABORATION_FLOOR",
    "Logistic",
    "RouterModel",
    "floor_elaboration",
    "load_model",
    "logit",
    "sigmoid",
]

BUNDLED_MODEL_FILE = "router_model.json"
"""The weights shipped in the ``edge_agent.router`` package."""

FORMAT_VERSION = 1

ELABORATION_FLOOR = 0.9
"""The score of a prompt whose last ask elaborates on a substantive answer
(``features._elaboration``): at least this, whatever the trees say. A rule, not a
weight: the writers who are not the one that wrote such follow-ups ask them at length,
so the trees learn "long" and never this feature (leave-one-writer-out, docs/router.md);
a short "why though?" after an explanation is the question continued, and hard."""

_ELABORATION = FEATURE_NAMES.index("elaboration")

RETRAIN = "retrain them with python -m router_lab.train (from a Tandem checkout)"


@dataclass(frozen=True)
class Logistic:
    """``log_odds(cloud) = bias + sum(w_i * (x_i - mean_i) / scale_i)``: each feature's
    contribution ``w_i * (x_i - mean_i) / scale_i`` is known, so the largest ones say why
    a prompt looks hard."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if not len(self.weights) == len(self.means) == len(self.scales):
            raise ValueError("weights, means and scales must have one entry per feature")
        if any(s <= 0 for s in self.scales):
            raise ValueError("feature scales must be > 0")

    def contributions(self, x: Sequence[float]) -> list[float]:
        """Each feature's additive share of the log-odds of "cloud"."""
        return [
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, x, self.means, self.scales, strict=True)
        ]

    def log_odds(self, x: Sequence[float]) -> float:
        return self.bias + math.fsum(self.contributions(x))


@dataclass(frozen=True)
class RouterModel:
    """Everything the learned router scores and explains with (see the module docstring).

    ``threshold`` is the probability at or above which a request goes to the cloud, as
    chosen by the training script; the edge may override it with a setting.
    """

    feature_names: tuple[str, ...]
    logistic: Logistic
    threshold: float
    lexicon_sha256: str
    """Hash of the word lists the training extracted features with."""
    terms: TermTable | None = None
    """The word-evidence table behind the ``term_evidence`` feature."""
    trees: Trees | None = None
    """The score; without trees (``--no-trees``) the logistic model scores."""
    metadata: Mapping[str, Any] | None = None
    """What the training script recorded (data, cross-validated figures); never used to
    score."""

    def __post_init__(self) -> None:
        if len(self.logistic.weights) != len(self.feature_names):
            raise ValueError("the logistic model must have one weight per feature")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be within (0, 1)")

    def vector(self, features: PromptFeatures) -> tuple[float, ...]:
        """``features`` as this model's input (with its word evidence)."""
        return feature_vector(features, self.terms)

    def probability(self, x: Sequence[float]) -> float:
        """Probability that the request needs the cloud model."""
        if self.trees is not None:
            p = sigmoid(self.trees.log_odds(x))
        else:
            p = sigmoid(self.logistic.log_odds(x))
        return floor_elaboration(p, x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "features": list(self.feature_names),
            "lexicon_sha256": self.lexicon_sha256,
            "weights": list(self.logistic.weights),
            "means": list(self.logistic.means),
            "scales": list(self.logistic.scales),
            "bias": self.logistic.bias,
            "threshold": self.threshold,
            "metadata": dict(self.metadata or {}),
            "terms": self.terms.to_dict() if self.terms is not None else {},
            "trees": self.trees.to_dict() if self.trees is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterModel:
        """Parse weights; refuses a file written for other features or other word lists."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"router model format {data.get('format')!r} is not supported")
        names = tuple(str(n) for n in data["features"])
        if names != FEATURE_NAMES:
            raise ValueError(f"router model was trained on other features; {RETRAIN}")
        trained_on = data.get("lexicon_sha256")
        ours = bundled_lexicon().sha256
        if trained_on != ours:
            raise ValueError(
                f"router model was trained on other word lists (lexicon_sha256 "
                f"{trained_on or 'not recorded'}) than edge_agent/router/lexicon/ holds "
                f"(lexicon_sha256 {ours}); {RETRAIN}, or restore the lists they were "
                "trained on"
            )
        return cls(
            feature_names=names,
            logistic=Logistic(
                weights=tuple(float(w) for w in data["weights"]),
                means=tuple(float(m) for m in data["means"]),
                scales=tuple(float(s) for s in data["scales"]),
                bias=float(data["bias"]),
            ),
            threshold=float(data["threshold"]),
            lexicon_sha256=ours,
            terms=TermTable.from_dict(data.get("terms") or {}),
            trees=Trees.from_dict(data["trees"]) if data.get("trees") else None,
            metadata=data.get("metadata"),
        )


def load_model(path: Path | None = None) -> RouterModel:
    """Read weights from ``path``, or the bundled ones. With the word lists, the only
    files the router reads, once, when the agent is built (never per request)."""
    if path is None:
        text = resources.files("edge_agent.router").joinpath(BUNDLED_MODEL_FILE).read_text()
    else:
        text = path.read_text(encoding="utf-8")
    return RouterModel.from_dict(json.loads(text))


def floor_elaboration(p: float, x: Sequence[float]) -> float:
    """``p``, raised to ``ELABORATION_FLOOR`` for an elaborating follow-up."""
    return max(p, ELABORATION_FLOOR) if x[_ELABORATION] > 0 else p


def logit(p: float) -> float:
    """The log-odds of ``p``, clamped to (1e-9, 1 - 1e-9) so that a certain score stays
    finite: ``sigmoid``'s inverse, for averaging scores in log-odds."""
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
