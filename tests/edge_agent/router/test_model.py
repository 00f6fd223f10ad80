"""The learned model's weights file: the bundled one loads, stale ones are refused."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from edge_agent.router import boost
from edge_agent.router.features import FEATURE_NAMES
from edge_agent.router.model import LinearModel, load_model


def test_bundled_weights_load_and_round_trip(tmp_path: Path) -> None:
    model = load_model()
    assert model.feature_names == FEATURE_NAMES
    assert 0 < model.threshold < 1
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    assert load_model(path).weights == model.weights


def test_contributions_add_up_to_the_linear_log_odds() -> None:
    linear = replace(load_model(), trees=None)  # the explaining half alone
    x = tuple(float(i % 3) for i in range(len(FEATURE_NAMES)))
    log_odds = linear.bias + sum(linear.contributions(x))
    p = linear.probability(x)
    assert abs(p - 1 / (1 + pow(2.718281828459045, -log_odds))) < 1e-9


def test_the_shipped_model_scores_with_trees_that_survive_a_round_trip() -> None:
    model = load_model()
    assert model.trees is not None and len(model.trees.trees) > 0
    again = LinearModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for i in range(5):
        x = tuple(float((i + j) % 4) for j in range(len(FEATURE_NAMES)))
        assert abs(again.probability(x) - model.probability(x)) < 1e-6


def test_weights_for_other_features_are_refused() -> None:
    data = load_model().to_dict()
    data["features"] = [*data["features"][:-1], "something_else"]
    with pytest.raises(ValueError, match="retrain"):
        LinearModel.from_dict(data)
    with pytest.raises(ValueError, match="format"):
        LinearModel.from_dict({**load_model().to_dict(), "format": 99})


def test_inconsistent_weights_are_refused() -> None:
    with pytest.raises(ValueError):
        LinearModel(FEATURE_NAMES, (1.0,), (0.0,), (1.0,), 0.0, 0.5)


def test_compiled_trees_score_as_walking_each_tree_does() -> None:
    trees = load_model().trees
    assert trees is not None
    for i in range(20):
        x = tuple(float((i * 7 + j * 3) % 9) / 3 for j in range(len(FEATURE_NAMES)))
        walked = math.fsum(boost._leaf(t, x) for t in trees.trees)
        assert trees.log_odds(x) == trees.base + trees.rate * walked


@pytest.mark.parametrize(
    "tree",
    [[0, 0.5, 1.0, "__import__('os')"], [0, "nan", 1.0, 2.0], ["x[0]", 0.5, 1.0, 2.0], 1e999],
)
def test_trees_that_are_not_numbers_are_refused(tree: object) -> None:
    """Trees are compiled to Python, so a weights file holding anything but numbers
    (or non-finite ones) must fail at load, not run."""
    with pytest.raises(ValueError):
        boost.Trees.from_dict({"base": 0.0, "rate": 0.1, "trees": [tree]})
