"""The scoring trees: compiled, they give what walking each tree gives; a weights file
holding anything but finite numbers is refused."""

from __future__ import annotations

import math

import pytest

from edge_agent.router.model import load_model
from edge_agent.router.trees import Trees, leaf
from edge_agent.router.vector import FEATURE_NAMES


def test_compiled_trees_score_as_walking_each_tree_does() -> None:
    trees = load_model().trees
    assert trees is not None
    for i in range(20):
        x = tuple(float((i * 7 + j * 3) % 9) / 3 for j in range(len(FEATURE_NAMES)))
        walked = math.fsum(leaf(t, x) for t in trees.trees)
        assert trees.log_odds(x) == trees.base + trees.rate * walked


def test_trees_round_trip() -> None:
    trees = Trees(base=-0.5, rate=0.1, trees=((0, 1.5, 2.0, (1, 0.0, -1.0, 3.0)), 0.25))
    again = Trees.from_dict(trees.to_dict())
    assert again == trees
    assert again.log_odds((2.0, 1.0)) == -0.5 + 0.1 * (3.0 + 0.25)


@pytest.mark.parametrize(
    "tree",
    [[0, 0.5, 1.0, "__import__('os')"], [0, "nan", 1.0, 2.0], ["x[0]", 0.5, 1.0, 2.0], 1e999],
)
def test_trees_that_are_not_numbers_are_refused(tree: object) -> None:
    """Trees are compiled to Python, so a weights file holding anything but numbers
    (or non-finite ones) must fail at load, not run."""
    with pytest.raises(ValueError):
        Trees.from_dict({"base": 0.0, "rate": 0.1, "trees": [tree]})
