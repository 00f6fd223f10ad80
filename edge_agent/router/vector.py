"""The learned model's input: ``PromptFeatures`` as numbers, declared once in ``FEATURES``.

Each entry names a feature and says how it is computed, in the order the model reads
them; ``FEATURE_NAMES`` and ``feature_vector`` both come from that one table, so they
cannot drift apart. The weights file lists the names it was trained on, and loading
refuses a file whose names differ (stale weights would score the wrong inputs).

Lengths go in as logarithms (a 4000-token prompt is not ten times "harder" than a
400-token one) and counts are capped, so no single odd request dominates the score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.router.features import PromptFeatures
from edge_agent.router.terms import TermTable

__all__ = ["FEATURES", "FEATURE_NAMES", "Feature", "feature_vector"]


@dataclass(frozen=True)
class Feature:
    """One input of the learned model: its name (in the weights file) and its value."""

    name: str
    value: Callable[[PromptFeatures, TermTable | None], float]
    """The number for a request's features, given the model's word-evidence table."""


FEATURES: tuple[Feature, ...] = (
    Feature("log_prompt_tokens", lambda f, _: math.log1p(f.prompt_tokens)),
    Feature("log_last_user_tokens", lambda f, _: math.log1p(f.last_user_tokens)),
    Feature("log_last_sentence_tokens", lambda f, _: math.log1p(f.last_sentence_tokens)),
    Feature("log_turns", lambda f, _: math.log1p(f.turns - 1)),
    Feature("log_max_tokens", lambda f, _: math.log1p(f.max_tokens or 0)),
    Feature("questions", lambda f, _: float(min(f.questions, 5))),
    Feature("numbers", lambda f, _: float(min(f.numbers, 8))),
    Feature("cjk_share", lambda f, _: f.cjk_share),
    Feature("has_system", lambda f, _: float(f.has_system)),
    Feature("code", lambda f, _: float(f.has_code)),
    Feature("math", lambda f, _: float(f.has_math)),
    Feature("reasoning", lambda f, _: float(f.has_reasoning)),
    Feature("proof", lambda f, _: float(f.proof)),
    Feature("depth", lambda f, _: float(f.depth)),
    Feature("writing", lambda f, _: float(f.writing)),
    Feature("structure", lambda f, _: float(f.structure)),
    Feature("planning", lambda f, _: float(f.planning)),
    Feature("expert", lambda f, _: float(f.expert)),
    Feature("easy", lambda f, _: float(f.easy)),
    Feature("logic", lambda f, _: float(f.logic)),
    Feature("trivial_ask", lambda f, _: float(f.trivial_ask)),
    Feature("history_hard", lambda f, _: float(f.history_hard)),
    Feature("follow_up", lambda f, _: float(f.follow_up)),
    Feature("log_previous_answer_tokens", lambda f, _: math.log1p(f.previous_answer_tokens)),
    Feature("max_number_digits", lambda f, _: float(min(f.max_number_digits, 6))),
    Feature("other_script_share", lambda f, _: f.other_script_share),
    Feature("elaboration", lambda f, _: float(f.elaboration)),
    # Interactions, from when a linear model scored: a long text with a trivial ask is
    # easy (length alone says the opposite); a pointing follow-up in a hard conversation
    # is hard (either alone says little). The trees could form them, the logistic model
    # that explains decisions cannot.
    Feature(
        "trivial_ask_x_log_length",
        lambda f, _: f.trivial_ask * math.log1p(f.last_user_tokens),
    ),
    Feature("history_hard_x_follow_up", lambda f, _: float(f.history_hard and f.follow_up)),
    # The word evidence: the model's own table over the request's hashed terms, 0 without one.
    Feature("term_evidence", lambda f, t: t.evidence(f.terms) if t is not None else 0.0),
)
"""The learned model's inputs, in order."""

FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)


def feature_vector(features: PromptFeatures, terms: TermTable | None = None) -> tuple[float, ...]:
    """``features`` as numbers in ``FEATURE_NAMES`` order; ``term_evidence`` comes from
    ``terms`` (the model's table), 0 without one."""
    return tuple(feature.value(features, terms) for feature in FEATURES)
