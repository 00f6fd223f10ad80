"""The cascade's verdict over first-token confidences: pure, no model."""

from __future__ import annotations

import pytest

from edge_agent.router import Reason
from edge_agent.router.cascade import CascadeConfig, cascade_confidence, judge_start
from edge_agent.settings import EdgeSettings
from inference import TokenConfidence


def margins(*values: float) -> list[TokenConfidence]:
    return [TokenConfidence(logprob=-0.1, margin=m) for m in values]


def test_confidence_is_the_mean_margin() -> None:
    assert cascade_confidence(margins(0.2, 0.4, 0.9)) == pytest.approx(0.5)
    assert cascade_confidence([]) == 1.0  # nothing generated: nothing to doubt


def test_verdict_against_the_threshold() -> None:
    config = CascadeConfig(n_tokens=3, threshold=0.3)
    assert judge_start(margins(0.3, 0.3, 0.3), config) is Reason.CONFIDENT  # at = confident
    assert judge_start(margins(0.1, 0.2, 0.3), config) is Reason.LOW_CONFIDENCE


def test_only_the_watched_tokens_count() -> None:
    config = CascadeConfig(n_tokens=2, threshold=0.5)
    # a confident third token cannot rescue an unsure start
    assert judge_start(margins(0.1, 0.1, 1.0, 1.0), config) is Reason.LOW_CONFIDENCE


def test_config_from_settings_and_bounds() -> None:
    settings = EdgeSettings(cascade=False, cascade_tokens=5, cascade_threshold=0.25)
    assert CascadeConfig.from_settings(settings) == CascadeConfig(False, 5, 0.25)
    with pytest.raises(ValueError):
        CascadeConfig(n_tokens=0)
    with pytest.raises(ValueError):
        CascadeConfig(threshold=1.5)
