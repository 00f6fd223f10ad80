"""What the confidence cascade does on a labelled set: escalations and accuracy, measured.

Two steps, so the slow one runs once:

1. ``collect``: run the real local model (the bundled SmolLM2 unless ``--model``) on every
   prompt, greedy, for the first ``--tokens`` tokens, and store each token's confidence
   (chosen-token log-probability, top-2 margin) as JSON.
2. ``report``: combine those with router scores and sweep the cascade's threshold. On the
   dev set the router scores are the 10-fold cross-validated ones (each prompt scored by
   a model, and compared with a threshold, that never saw it:
   ``router_lab.train.cross_validate``); on any other set (``--bundled-router``), the
   shipped weights. For each band width, number of watched tokens and threshold it
   prints how many band prompts escalate and accuracy / cloud recall / local kept /
   cloud share of router + cascade against the router alone, plus the AUROC of the
   confidence for "needs the cloud" among band prompts (threshold-free: 0.5 = no signal).

    .venv/bin/python bench/cascade.py collect data/router_dev.jsonl --out /tmp/conf_dev.json
    .venv/bin/python bench/cascade.py report data/router_dev.jsonl --confidence /tmp/conf_dev.json
    .venv/bin/python bench/cascade.py report data/router_holdout.jsonl \
        --confidence /tmp/conf_holdout.json --bundled-router --band 0.3 --tokens 8 \
        --threshold 0.15

A cascade threshold picked on the dev set and reported on it is optimistic (one number
tuned on 160 prompts); the held-out run with fixed settings is the honest figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from edge_agent.router.cascade import CascadeConfig, cascade_confidence
from edge_agent.router.features import extract_features
from edge_agent.router.model import load_model
from edge_agent.router.policy import Route, Router, RouterConfig
from inference import (
    ConfidenceProbe,
    ContextTooLong,
    LlamaRunner,
    RunnerConfig,
    TokenConfidence,
    bundled_model_path,
)
from router_lab.dataset import LabelledPrompt, read_dataset
from router_lab.evaluate import Figures, figures
from router_lab.train import TARGET_RECALL, cross_validate, rows_of, stratified_folds
from shared.messages import SamplingParams

CV_FOLDS, CV_INNER, CV_SEED, CV_RECALL = 10, 5, 7, TARGET_RECALL
"""``python -m router_lab.train``'s defaults, so the scores are docs/router.md's CV."""


async def collect(items: Sequence[LabelledPrompt], model: Path, n_tokens: int) -> list[object]:
    runner = LlamaRunner(RunnerConfig(model_path=model, n_ctx=2048))
    await runner.load()
    rows: list[object] = []
    try:
        for item in items:
            probe = ConfidenceProbe(n_tokens)
            params = SamplingParams(max_tokens=n_tokens, temperature=0)
            request = item.request.model_copy(update={"params": params})
            try:
                async for _ in runner.stream(request, probe=probe):
                    pass
            except ContextTooLong as exc:
                # Never local: the context policy sends it to the cloud before any cascade.
                print(f"{item.id}: skipped, {exc}", file=sys.stderr)
                rows.append({"id": item.id, "tokens": [], "too_long": True})
                continue
            rows.append({"id": item.id, "tokens": [asdict(v) for v in probe.values]})
    finally:
        await runner.aclose()
    return rows


def router_scores(items: Sequence[LabelledPrompt], bundled: bool) -> list[tuple[float, float]]:
    """Each item's (score, threshold it is compared with)."""
    if bundled:
        router = Router(RouterConfig(), load_model())
        return [(router.score(extract_features(i.request)), router.threshold) for i in items]
    rows = rows_of(items)
    cv = cross_validate(
        rows, [], k=CV_FOLDS, inner_k=CV_INNER, seed=CV_SEED, target_recall=CV_RECALL
    )
    labels = [label for _, label in rows]
    threshold_of = [0.0] * len(rows)
    for fold, threshold in zip(
        stratified_folds(labels, CV_FOLDS, seed=CV_SEED), cv.thresholds, strict=True
    ):
        for i in fold:
            threshold_of[i] = threshold
    return list(zip(cv.scores, threshold_of, strict=True))


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative); ties count half."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def simulate(
    labels: Sequence[Route],
    scored: Sequence[tuple[float, float]],
    confidences: Sequence[Sequence[TokenConfidence]],
    band: float,
    config: CascadeConfig,
    too_long: frozenset[int] = frozenset(),
) -> tuple[Figures, int, int]:
    """Router + cascade routes: (figures, band prompts, escalated). Prompts in
    ``too_long`` (past the local context) go to the cloud before the router runs."""
    routes: list[Route] = []
    in_band = escalated = 0
    for i, ((score, threshold), values) in enumerate(zip(scored, confidences, strict=True)):
        if score >= threshold or i in too_long:
            routes.append(Route.CLOUD)
        elif score >= threshold - band:
            in_band += 1
            low = cascade_confidence(values[: config.n_tokens]) < config.threshold
            escalated += low
            routes.append(Route.CLOUD if low else Route.LOCAL)
        else:
            routes.append(Route.LOCAL)
    return figures(labels, routes), in_band, escalated


def line(name: str, f: Figures) -> str:
    return (
        f"{name:34s} acc {f.accuracy:.3f}  recall {f.cloud_recall:.3f}  "
        f"kept {f.local_kept:.3f}  share {f.cloud_share:.3f}"
    )


def report(args: argparse.Namespace, items: Sequence[LabelledPrompt]) -> None:
    rows = json.loads(args.confidence.read_text())
    stored = {row["id"]: row["tokens"] for row in rows}
    skipped = {row["id"] for row in rows if row.get("too_long")}
    too_long = frozenset(i for i, item in enumerate(items) if item.id in skipped)
    confidences = [[TokenConfidence(**t) for t in stored[i.id]] for i in items]
    labels = [i.label for i in items]
    scored = router_scores(items, args.bundled_router)
    alone, _, _ = simulate(labels, scored, confidences, 0.0, CascadeConfig(), too_long)
    print(f"{len(items)} prompts from {args.dataset}")
    print(line("router alone", alone))
    bands = args.band or [0.1, 0.2, 0.3, 0.4]
    token_counts = args.tokens or [4, 8, 16]
    thresholds = args.threshold or [round(0.30 + 0.04 * i, 2) for i in range(14)]
    for band in bands:
        members = [i for i, (s, t) in enumerate(scored) if t - band <= s < t and i not in too_long]
        for n in token_counts:
            conf = {i: cascade_confidence(confidences[i][:n]) for i in members}
            pos = [conf[i] for i in members if labels[i] is Route.LOCAL]
            neg = [conf[i] for i in members if labels[i] is Route.CLOUD]
            print(
                f"band {band:.2f}, {n:2d} tokens: {len(members)} band prompts "
                f"({len(neg)} cloud-labelled), AUROC of confidence for 'local' "
                f"{auroc(pos, neg):.3f}"
            )
            for threshold in thresholds:
                config = CascadeConfig(n_tokens=n, threshold=threshold)
                f, _, up = simulate(labels, scored, confidences, band, config, too_long)
                print("  " + line(f"threshold {threshold:.2f}: {up:2d} escalated", f))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the confidence cascade.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="run the local model, store first-token confidences")
    c.add_argument("dataset", type=Path)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--model", type=Path, help="GGUF (default: the bundled SmolLM2)")
    c.add_argument("--tokens", type=int, default=16)
    r = sub.add_parser("report", help="sweep the cascade over stored confidences")
    r.add_argument("dataset", type=Path)
    r.add_argument("--confidence", type=Path, required=True)
    r.add_argument("--bundled-router", action="store_true", help="score with shipped weights")
    r.add_argument("--band", type=float, action="append")
    r.add_argument("--tokens", type=int, action="append")
    r.add_argument("--threshold", type=float, action="append")
    args = parser.parse_args(argv)
    items = read_dataset(args.dataset)
    if args.command == "collect":
        model = args.model or bundled_model_path()
        if model is None:
            print("cascade: no --model and no bundled model installed", file=sys.stderr)
            return 2
        rows = asyncio.run(collect(items, model, args.tokens))
        args.out.write_text(json.dumps(rows) + "\n", encoding="utf-8")
        return 0
    report(args, items)
    return 0


if __name__ == "__main__":
    sys.exit(main())
