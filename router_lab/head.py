"""A small logistic head in numpy: ridge-penalised logistic regression by Newton's method.

What an embedding is scored with (``router_lab.lowo``). numpy only, because the runtime
must not need scikit-learn; a linear head on a mean-pooled embedding is also the one
that could ship as a single weight vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LogisticHead", "fit_head"]


@dataclass(frozen=True)
class LogisticHead:
    """``sigmoid(((x - means) / scales) @ weights + bias)``."""

    weights: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    bias: float

    def log_odds(self, xs: np.ndarray) -> np.ndarray:
        return np.asarray(((xs - self.means) / self.scales) @ self.weights + self.bias)

    def probability(self, xs: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.log_odds(xs), -40, 40))))


def fit_head(
    xs: np.ndarray, labels: np.ndarray, *, l2: float, iterations: int = 30
) -> LogisticHead:
    """Fit on standardised ``xs`` (rows) against 0/1 ``labels``; the bias is unpenalised."""
    xs = np.asarray(xs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    means = xs.mean(axis=0)
    scales = xs.std(axis=0)
    scales[scales < 1e-9] = 1.0
    z = np.hstack([np.ones((len(xs), 1)), (xs - means) / scales])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40, 40)))
        grad = z.T @ (p - y) + penalty * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return LogisticHead(weights=beta[1:], means=means, scales=scales, bias=float(beta[0]))
