"""The numpy logistic head learns a separating direction and is regularised."""

from __future__ import annotations

import numpy as np

from router_lab.head import fit_head


def test_head_separates_and_shrinks_with_the_penalty() -> None:
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, 5))
    labels = (xs[:, 2] + 0.1 * rng.normal(size=200) > 0).astype(int)
    loose = fit_head(xs, labels, l2=0.1)
    tight = fit_head(xs, labels, l2=1000.0)
    assert int(np.argmax(np.abs(loose.weights))) == 2
    assert np.all(np.abs(tight.weights) < np.abs(loose.weights).max())
    accuracy = np.mean((loose.probability(xs) >= 0.5) == labels)
    assert accuracy > 0.95


def test_constant_columns_do_not_break_the_fit() -> None:
    xs = np.hstack([np.ones((20, 1)), np.arange(20.0)[:, None]])
    head = fit_head(xs, (np.arange(20) >= 10).astype(int), l2=1.0)
    assert head.weights[0] == 0.0
    assert (
        head.probability(np.array([[1.0, 19.0]]))[0]
        > 0.5
        > head.probability(np.array([[1.0, 0.0]]))[0]
    )
