"""``python -m router_lab.train``: fit the router's weights and measure them honestly.

Three things learned from the same labelled prompts: the word-evidence table
(``router_lab.terms``), then, on the ``feature_vector``s, an L2-regularised logistic
regression (pure Python, Newton's method) that explains decisions, and boosted depth-4
trees (``router_lab.boost``, numpy) that give the score; ``--no-trees`` scores with the
regression alone. The weights file records the hash of the word lists the features were
extracted with (``lexicon_sha256``): the runtime refuses it once the lists change.

The threshold is the one number that trades cloud recall for local share, so it is the
one most easily over-tuned. It is always chosen on *out-of-fold* scores of the data the
model is fitted on (an inner cross-validation), as the highest threshold whose cloud
recall reaches ``--target-recall``. The figures reported come from an outer stratified
k-fold over the dev set: each fold's model and threshold see none of that fold's prompts.
Extra data (``--extra``, our own prompts) only ever joins the training side.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edge_agent.router.features import PromptFeatures, extract_features
from edge_agent.router.markers import bundled_lexicon
from edge_agent.router.model import Logistic, RouterModel, sigmoid
from edge_agent.router.policy import Route
from edge_agent.router.vector import FEATURE_NAMES, feature_vector
from router_lab.boost import fit_trees
from router_lab.dataset import LabelledPrompt, read_dataset
from router_lab.evaluate import Figures, figures
from router_lab.terms import fit_term_table, leave_one_out

__all__ = [
    "TARGET_RECALL",
    "choose_threshold",
    "cross_validate",
    "fit",
    "main",
    "out_of_fold_scores",
    "stratified_folds",
]

Row = tuple[PromptFeatures, int]
"""A prompt's features and its label (1 = cloud)."""

TARGET_RECALL = 0.96
"""Cloud recall the threshold is chosen to reach on out-of-fold scores; the target on
held-out data is 0.95. On the last three blind held-out sets (3-5) recall came out at
0.968-1.000 while the share of easy prompts kept local came out at 0.750-0.845, below
the cross-validated 0.89, so the margin goes where the misses have been. Pooled 10-fold
CV over 944 prompts, three seeds, with the depth-2 trees of the time: target 0.97 gave
recall 0.970 and local kept 0.902, target 0.96 gave 0.964 and 0.920. Chosen before
held-out set 6 was opened."""

L2 = 3.0
"""Ridge penalty on the standardised weights: with a few hundred rows and ~30 features the
fit is otherwise free to lean on whichever marker happens to separate the training folds
(3 beat 1 in cross-validation over all our labelled data; the held-out set played no part)."""


def rows_of(items: Sequence[LabelledPrompt]) -> list[Row]:
    return [(extract_features(i.request), int(i.label is Route.CLOUD)) for i in items]


_TERM_EVIDENCE = FEATURE_NAMES.index("term_evidence")


def fit(
    rows: Sequence[Row], *, l2: float = L2, threshold: float = 0.5, trees: bool = True
) -> RouterModel:
    """The word-evidence table from ``rows``, then logistic regression on their vectors
    (Newton-Raphson, bias unpenalised) and, with ``trees``, boosted trees that score.
    Each row's word evidence is leave-one-out, so the weight it earns is the weight it
    deserves on prompts the table never saw."""
    docs = [(f.terms, label) for f, label in rows]
    table = fit_term_table(docs)
    xs = [
        _with_evidence(feature_vector(f), evidence)
        for (f, _), evidence in zip(rows, leave_one_out(docs), strict=True)
    ]
    d = len(FEATURE_NAMES)
    n = len(rows)
    means = [math.fsum(x[j] for x in xs) / n for j in range(d)]
    scales = []
    for j in range(d):
        var = math.fsum((x[j] - means[j]) ** 2 for x in xs) / n
        scales.append(math.sqrt(var) if var > 1e-12 else 1.0)
    z = [[1.0] + [(x[j] - means[j]) / scales[j] for j in range(d)] for x in xs]
    y = [label for _, label in rows]
    beta = [0.0] * (d + 1)
    for _ in range(50):
        grad = [0.0] * (d + 1)
        hess = [[0.0] * (d + 1) for _ in range(d + 1)]
        for zi, yi in zip(z, y, strict=True):
            p = sigmoid(math.fsum(b * v for b, v in zip(beta, zi, strict=True)))
            w = p * (1 - p)
            for a in range(d + 1):
                grad[a] += (p - yi) * zi[a]
                wa = w * zi[a]
                row = hess[a]
                for b in range(a, d + 1):
                    row[b] += wa * zi[b]
        for a in range(d + 1):
            for b in range(a):
                hess[a][b] = hess[b][a]
            if a > 0:
                grad[a] += l2 * beta[a]
                hess[a][a] += l2
        step = _solve(hess, grad)
        beta = [b - s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return RouterModel(
        feature_names=FEATURE_NAMES,
        logistic=Logistic(
            weights=tuple(beta[1:]), means=tuple(means), scales=tuple(scales), bias=beta[0]
        ),
        threshold=threshold,
        lexicon_sha256=bundled_lexicon().sha256,
        terms=table,
        trees=fit_trees(xs, y) if trees else None,
    )


def _with_evidence(x: tuple[float, ...], evidence: float) -> tuple[float, ...]:
    """``x`` with its ``term_evidence`` replaced by ``evidence``."""
    return (*x[:_TERM_EVIDENCE], evidence, *x[_TERM_EVIDENCE + 1 :])


def stratified_folds(labels: Sequence[int], k: int, *, seed: int) -> list[list[int]]:
    """Indices split into ``k`` folds, each with the labels' overall proportions."""
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for label in sorted(set(labels)):
        members = [i for i, v in enumerate(labels) if v == label]
        rng.shuffle(members)
        for position, index in enumerate(members):
            folds[position % k].append(index)
    return [sorted(f) for f in folds]


def out_of_fold_scores(
    rows: Sequence[Row], *, k: int, seed: int, l2: float = L2, trees: bool = True
) -> list[float]:
    """Each row's cloud probability from a model fitted without its fold."""
    scores = [0.0] * len(rows)
    for fold in stratified_folds([label for _, label in rows], k, seed=seed):
        held = set(fold)
        model = fit([r for i, r in enumerate(rows) if i not in held], l2=l2, trees=trees)
        for i in fold:
            scores[i] = model.probability(model.vector(rows[i][0]))
    return scores


def choose_threshold(scores: Sequence[float], labels: Sequence[int], target_recall: float) -> float:
    """The highest threshold whose cloud recall on ``scores`` reaches ``target_recall``.

    Highest, because every step down sends more local prompts to the cloud; the value is
    placed halfway to the next lower score so that a slightly lower score still passes.
    """
    cloud = sorted((s for s, v in zip(scores, labels, strict=True) if v == 1), reverse=True)
    if not cloud:
        return 0.5
    needed = min(len(cloud), math.ceil(target_recall * len(cloud) - 1e-9))
    at = cloud[needed - 1]
    below = [s for s in scores if s < at]
    threshold = (at + max(below)) / 2 if below else at
    return min(max(threshold, 1e-6), 1 - 1e-6)


def train(
    rows: Sequence[Row],
    *,
    target_recall: float,
    inner_k: int,
    seed: int,
    l2: float = L2,
    trees: bool = True,
) -> RouterModel:
    """A model on all ``rows``, its threshold chosen on their out-of-fold scores."""
    scores = out_of_fold_scores(rows, k=inner_k, seed=seed, l2=l2, trees=trees)
    threshold = choose_threshold(scores, [label for _, label in rows], target_recall)
    return fit(rows, l2=l2, threshold=threshold, trees=trees)


@dataclass(frozen=True)
class CrossValidation:
    """Outer k-fold figures on the dev set, and the held-out scores behind them."""

    figures: Figures
    scores: list[float]
    thresholds: list[float]
    labels: list[int]


def cross_validate(
    dev: Sequence[Row],
    extra: Sequence[Row],
    *,
    k: int,
    inner_k: int,
    seed: int,
    target_recall: float,
    l2: float = L2,
    trees: bool = True,
) -> CrossValidation:
    """Stratified k-fold over ``dev``; every fold trains on the rest plus ``extra``."""
    labels = [label for _, label in dev]
    scores = [0.0] * len(dev)
    predicted = [Route.LOCAL] * len(dev)
    thresholds: list[float] = []
    for fold in stratified_folds(labels, k, seed=seed):
        held = set(fold)
        training = [r for i, r in enumerate(dev) if i not in held] + list(extra)
        model = train(
            training, target_recall=target_recall, inner_k=inner_k, seed=seed, l2=l2, trees=trees
        )
        thresholds.append(model.threshold)
        for i in fold:
            scores[i] = model.probability(model.vector(dev[i][0]))
            predicted[i] = Route.CLOUD if scores[i] >= model.threshold else Route.LOCAL
    truth = [Route.CLOUD if v else Route.LOCAL for v in labels]
    return CrossValidation(figures(truth, predicted), scores, thresholds, labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.train",
        description="Fit the learned router on the dev set (plus extra data), report "
        "cross-validated figures, and write the weights file.",
    )
    parser.add_argument("--dev", type=Path, default=Path("data/router_dev.jsonl"))
    parser.add_argument(
        "--extra", type=Path, action="append", default=[], help="more training data (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("edge_agent/router/router_model.json"), help="weights"
    )
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--inner-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target-recall", type=float, default=TARGET_RECALL)
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--cv-json", type=Path, help="write the cross-validated scores here")
    parser.add_argument(
        "--no-trees", action="store_true", help="score with the logistic regression alone"
    )
    args = parser.parse_args(argv)
    try:
        dev = rows_of(read_dataset(args.dev))
        extra = [row for path in args.extra for row in rows_of(read_dataset(path))]
    except (OSError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    cv = cross_validate(
        dev,
        extra,
        k=args.folds,
        inner_k=args.inner_folds,
        seed=args.seed,
        target_recall=args.target_recall,
        l2=args.l2,
        trees=not args.no_trees,
    )
    f = cv.figures
    sys.stdout.write(
        f"{args.folds}-fold CV on {args.dev} ({len(dev)} prompts, +{len(extra)} extra for "
        f"training): accuracy {f.accuracy:.3f}, cloud recall {f.cloud_recall:.3f}, "
        f"local kept {f.local_kept:.3f}, cloud share {f.cloud_share:.3f}\n"
    )
    model = train(
        dev + extra,
        target_recall=args.target_recall,
        inner_k=args.inner_folds,
        seed=args.seed,
        l2=args.l2,
        trees=not args.no_trees,
    )
    metadata: dict[str, Any] = {
        "trained_on": [str(args.dev), *map(str, args.extra)],
        "rows": len(dev) + len(extra),
        "l2": args.l2,
        "trees": not args.no_trees,
        "target_recall": args.target_recall,
        "cv": {"folds": args.folds, "seed": args.seed, **_rounded(asdict(f))},
    }
    model = replace(model, metadata=metadata)
    args.out.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"threshold {model.threshold:.3f}; weights written to {args.out}\n")
    if args.cv_json is not None:
        payload = {"scores": cv.scores, "labels": cv.labels, "thresholds": cv.thresholds}
        args.cv_json.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    return 0


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """``a x = b`` by Gaussian elimination with partial pivoting (``a`` is small, SPD)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            if factor:
                for c in range(col, n + 1):
                    m[r][c] -= factor * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        if abs(m[r][r]) < 1e-12:
            continue
        x[r] = (m[r][n] - math.fsum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


if __name__ == "__main__":
    sys.exit(main())
