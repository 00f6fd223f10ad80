"""Folding the embedding head into per-token weights is exact."""

from __future__ import annotations

import numpy as np

from edge_agent.router.table import TokenHead
from router_lab.head import fit_head
from router_lab.tokenhead import fold


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
