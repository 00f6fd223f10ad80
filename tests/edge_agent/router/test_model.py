"""The learned model's weights file: the bundled one loads, stale ones are refused."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from edge_agent.router.markers import bundled_lexicon
from edge_agent.router.model import ELABORATION_FLOOR, Logistic, RouterModel, load_model
from edge_agent.router.vector import FEATURE_NAMES


def test_bundled_weights_load_and_round_trip(tmp_path: Path) -> None:
    model = load_model()
    assert model.feature_names == FEATURE_NAMES
    assert model.lexicon_sha256 == bundled_lexicon().sha256
    assert 0 < model.threshold < 1
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    assert load_model(path).logistic == model.logistic


def test_contributions_add_up_to_the_logistic_log_odds() -> None:
    no_trees = replace(load_model(), trees=None)  # scored by the explaining model alone
    x = tuple(float(i % 3) for i in range(len(FEATURE_NAMES)))
    log_odds = no_trees.logistic.bias + sum(no_trees.logistic.contributions(x))
    assert no_trees.probability(x) == pytest.approx(1 / (1 + math.exp(-log_odds)), abs=1e-9)


def test_the_shipped_model_scores_with_trees_that_survive_a_round_trip() -> None:
    model = load_model()
    assert model.trees is not None and len(model.trees.trees) > 0
    again = RouterModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for i in range(5):
        x = tuple(
            0.0 if name == "elaboration" else float((i + j) % 4)
            for j, name in enumerate(FEATURE_NAMES)
        )
        assert abs(again.probability(x) - model.probability(x)) < 1e-6
        assert model.probability(x) == pytest.approx(
            1 / (1 + math.exp(-model.trees.log_odds(x)))
        ), "the trees score, not the logistic model"


def test_weights_for_other_features_are_refused() -> None:
    data = load_model().to_dict()
    data["features"] = [*data["features"][:-1], "something_else"]
    with pytest.raises(ValueError, match=r"router_lab\.train"):
        RouterModel.from_dict(data)
    with pytest.raises(ValueError, match="format"):
        RouterModel.from_dict({**load_model().to_dict(), "format": 99})


def test_weights_trained_on_other_word_lists_are_refused_naming_both_hashes() -> None:
    ours = bundled_lexicon().sha256
    theirs = "0" * 64
    with pytest.raises(ValueError, match="other word lists") as refused:
        RouterModel.from_dict({**load_model().to_dict(), "lexicon_sha256": theirs})
    message = str(refused.value)
    assert theirs in message and ours in message
    assert "python -m router_lab.train" in message


def test_weights_that_record_no_word_lists_are_refused() -> None:
    data = load_model().to_dict()
    del data["lexicon_sha256"]
    with pytest.raises(ValueError, match="not recorded"):
        RouterModel.from_dict(data)


def test_inconsistent_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per feature"):
        Logistic((1.0,), (0.0, 0.0), (1.0,), 0.0)
    with pytest.raises(ValueError, match="scales"):
        Logistic((1.0,), (0.0,), (0.0,), 0.0)
    with pytest.raises(ValueError, match="one weight per feature"):
        RouterModel(FEATURE_NAMES, Logistic((1.0,), (0.0,), (1.0,), 0.0), 0.5, "")
    logistic = load_model().logistic
    with pytest.raises(ValueError, match="threshold"):
        RouterModel(FEATURE_NAMES, logistic, 1.0, "")


def test_an_elaborating_follow_up_scores_at_least_the_floor() -> None:
    """The elaboration rule (``model.ELABORATION_FLOOR``) holds whatever the trees say."""
    model = load_model()
    low = tuple(0.0 for _ in FEATURE_NAMES)
    flagged = tuple(1.0 if n == "elaboration" else 0.0 for n in FEATURE_NAMES)
    assert model.probability(flagged) >= ELABORATION_FLOOR
    assert model.probability(flagged) >= model.probability(low)
