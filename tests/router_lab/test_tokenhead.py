"""Folding the embedding head into per-token weights is exact."""

from __future__ import annotations

import numpy as np

from edge_agent.router.table import TokenHead
from router_lab.head import fit_head
from router_lab.tokenhead import fold, fold_blocks


def test_folded_weights_score_exactly_as_the_head_on_mean_pooled_rows() -> None:
    rng = np.random.default_rng(3)
    table = rng.normal(size=(50, 8))
    docs = [rng.integers(0, 50, size=rng.integers(1, 12)) for _ in range(80)]
    pooled = np.stack([table[d].mean(axis=0) for d in docs])
    labels = (pooled[:, 0] + 0.3 * rng.normal(size=len(docs)) > 0).astype(int)
    head = fit_head(pooled, labels, l2=1.0)
    per_token, bias = fold(table, head.weights, head.means, head.scales, head.bias)
    folded = TokenHead(gguf_sha256="0" * 64, weights=list(per_token), bias=bias, threshold=0.5)
    expected = head.log_odds(pooled)
    got = np.array([folded.log_odds([int(i) for i in d]) for d in docs])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_a_split_head_folds_into_focus_short_focus_long_and_routing_weights() -> None:
    """``split`` (focus mean in the short or the long block, zeros in the other, then
    the routing mean) folds into three per-token vectors and one bias, exactly; an
    empty focus adds nothing, as the edge scores it."""
    rng = np.random.default_rng(5)
    table = rng.normal(size=(40, 6))
    rows, docs = [], []
    for n in range(90):
        routing = rng.integers(0, 40, size=rng.integers(1, 10))
        focus = rng.integers(0, 40, size=rng.integers(0, 6))
        long = n % 3 == 0
        mean = table[focus].mean(axis=0) if len(focus) else np.zeros(6)
        zeros = np.zeros(6)
        parts = [zeros, mean] if long else [mean, zeros]
        rows.append(np.concatenate([*parts, table[routing].mean(axis=0)]))
        docs.append((routing, focus, long))
    xs = np.stack(rows)
    labels = (xs[:, 0] - xs[:, 13] + 0.3 * rng.normal(size=len(xs)) > 0).astype(int)
    head = fit_head(xs, labels, l2=1.0)
    blocks, bias = fold_blocks(table, head.weights, head.means, head.scales, head.bias)
    assert len(blocks) == 3
    folded = TokenHead(
        gguf_sha256="0" * 64,
        weights=list(blocks[2]),
        bias=bias,
        threshold=0.5,
        focus_short=list(blocks[0]),
        focus_long=list(blocks[1]),
    )
    got = np.array(
        [folded.log_odds([int(i) for i in r], [int(i) for i in f], long) for r, f, long in docs]
    )
    np.testing.assert_allclose(got, head.log_odds(xs), rtol=1e-9, atol=1e-9)
