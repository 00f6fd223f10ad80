"""Fitting the scoring trees: they learn a condition on two features at once."""

from __future__ import annotations

import itertools

from router_lab.boost import fit_trees


def test_trees_learn_a_conjunction() -> None:
    """Cloud only when both features are set ("long, and the conversation was hard")."""
    grid = [(float(a), float(b)) for a, b in itertools.product((0, 1), repeat=2)] * 10
    labels = [int(a == b == 1.0) for a, b in grid]
    trees = fit_trees(grid, labels, rounds=30, depth=2)
    assert len(trees.trees) == 30
    assert trees.log_odds((1.0, 1.0)) > 0
    assert max(trees.log_odds(x) for x in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]) < 0
