"""Fold the lab's token-embedding head into the per-token weights the edge ships.

The head (``router_lab.head``) scores the mean of the bundled GGUF's input token
embeddings over the routing text's tokens. Mean and head are both linear, so
``log_odds = bias' + mean(table[ids] @ (weights / scales))`` with
``bias' = bias - means @ (weights / scales)``: one float per token id
(``edge_agent.router.table.TokenHead``), exact, and 576 times smaller than the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.router.policy import Route
from edge_agent.router.table import TokenHead, file_sha256
from router_lab.dataset import LabelledPrompt

__all__ = ["fit_token_head", "fold", "fold_blocks"]


def fold(
    table: np.ndarray, weights: np.ndarray, means: np.ndarray, scales: np.ndarray, bias: float
) -> tuple[np.ndarray, float]:
    """Per-token log-odds contributions and the folded bias (see the module docstring)."""
    direction = np.asarray(weights, dtype=np.float64) / np.asarray(scales, dtype=np.float64)
    per_token = np.asarray(table, dtype=np.float64) @ direction
    return per_token, float(bias - np.asarray(means, dtype=np.float64) @ direction)


def fit_token_head(
    items: Sequence[LabelledPrompt],
    *,
    threshold: float,
    l2: float,
    metadata: Mapping[str, Any] | None = None,
    kind: str = "table",
) -> TokenHead:
    """The head fitted on every item's ``kind`` embedding (``table`` or ``split``),
    folded for the bundled GGUF."""
    from router_lab.embed import _model_path, embed_items, token_table
    from router_lab.head import fit_head

    labels = np.array([int(i.label is Route.CLOUD) for i in items])
    head = fit_head(embed_items(kind, items), labels, l2=l2)
    _, table = token_table()
    per_token, bias = fold_blocks(table, head.weights, head.means, head.scales, head.bias)
    focus: list[list[float] | None] = [None, None]
    if kind == "split":
        focus = [[float(v) for v in block] for block in per_token[:2]]
    return TokenHead(
        gguf_sha256=file_sha256(Path(_model_path())),
        weights=[float(v) for v in per_token[-1]],
        bias=bias,
        threshold=threshold,
        metadata=dict(metadata or {}),
        focus_short=focus[0],
        focus_long=focus[1],
    )


def fold_blocks(
    table: np.ndarray, weights: np.ndarray, means: np.ndarray, scales: np.ndarray, bias: float
) -> tuple[list[np.ndarray], float]:
    """``fold`` for a head over several mean embeddings side by side (``split``: focus
    short, focus long, routing): one per-token vector per block, one bias."""
    width = table.shape[1]
    blocks = len(weights) // width
    folded, total = [], float(bias)
    for k in range(blocks):
        part = slice(k * width, (k + 1) * width)
        per_token, block_bias = fold(table, weights[part], means[part], scales[part], 0.0)
        folded.append(per_token)
        total += block_bias
    return folded, total
