"""``python -m router_lab.tradeoff RESULT.json``: what each recall target keeps, out of writer.

The targets ask for cloud recall and local kept together; where the router falls short,
the question is what one costs in the other. A ``lowo --json`` or ``second --json``
result holds each writer's out-of-writer scores, so the threshold can be chosen again
at any pooled recall target without refitting (the folds' thresholds on the other
writers' scores, as ``lowo`` chooses them). The scores must belong to the same labelled
files, in the same order, as the ones the result was made from (default
``data/*.jsonl``); a result made before the data changed is refused, not misread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from router_lab.dataset import LabelledPrompt
from router_lab.lowo import TARGET_RECALL, LowoResult, group_by_writer, summarise
from router_lab.second import TARGET_RECALL as LOOK_TARGET_RECALL

__all__ = ["RECALL_TARGETS", "main", "sweep"]

RECALL_TARGETS = (TARGET_RECALL, LOOK_TARGET_RECALL, 0.96, 0.95, 0.94, 0.93, 0.90, 0.85)
"""The pooled cloud recall targets swept by default: the issue's (``lowo``'s), the one
``second`` ships the look's threshold at, and below."""


def _scores(result: object, groups: dict[str, list[LabelledPrompt]]) -> dict[str, list[float]]:
    scores = result.get("scores") if isinstance(result, dict) else None
    if not isinstance(scores, dict):
        raise ValueError(
            "the result has no per-writer scores (write it with lowo or second --json)"
        )
    if set(scores) != set(groups):
        missing, extra = sorted(set(groups) - set(scores)), sorted(set(scores) - set(groups))
        raise ValueError(
            f"the result's writers differ from the data's: missing {missing}, extra {extra}"
        )
    for writer, items in groups.items():
        values = scores[writer]
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"writer {writer}: the scores are not a list of numbers")
        if len(values) != len(items):
            raise ValueError(
                f"writer {writer}: {len(values)} scores for {len(items)} prompts "
                "(the data changed after the result was written)"
            )
    return {w: [float(s) for s in scores[w]] for w in groups}


def sweep(
    groups: dict[str, list[LabelledPrompt]],
    scores: dict[str, list[float]],
    targets: tuple[float, ...] = RECALL_TARGETS,
) -> list[tuple[float, LowoResult]]:
    """Each pooled recall target with the figures its thresholds give."""
    return [(t, summarise(groups, scores, rule="recall", target_recall=t)) for t in targets]


def _row(label: str, result: LowoResult) -> str:
    m, w = result.mean, result.worst
    return (
        f"  {label:<14} {result.shipped_threshold:6.3f}   "
        f"{m['accuracy']:.3f} / {m['cloud_recall']:.3f} / {m['local_kept']:.3f}   "
        f"{w['accuracy']:.3f} / {w['cloud_recall']:.3f} / {w['local_kept']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.tradeoff",
        description="Mean and worst figures out of writer at each pooled cloud recall target, "
        "from a lowo or second --json result, without refitting.",
    )
    parser.add_argument("result", type=Path, help="a `lowo --json` or `second --json` file")
    parser.add_argument("datasets", type=Path, nargs="*", help="default: data/*.jsonl")
    parser.add_argument(
        "--recall",
        type=float,
        nargs="+",
        default=list(RECALL_TARGETS),
        help="pooled cloud recall targets (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not all(0 < t <= 1 for t in args.recall):
        print("tradeoff: a recall target is above 0 and at most 1", file=sys.stderr)
        return 2
    paths = args.datasets or sorted(Path("data").glob("*.jsonl"))
    try:
        result = json.loads(args.result.read_text(encoding="utf-8"))
        groups = group_by_writer(paths)
        scores = _scores(result, groups)
    except (OSError, ValueError) as exc:
        print(f"tradeoff: {exc}", file=sys.stderr)
        return 2
    print(
        f"{result.get('scorer', 'scores')}, {len(groups)} writers: threshold, then mean and "
        "worst accuracy / cloud recall / local kept"
    )
    for target, figures in sweep(groups, scores, tuple(args.recall)):
        print(_row(f"recall {target:.3f}", figures))
    print(_row("targets rule", summarise(groups, scores, rule="targets")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
