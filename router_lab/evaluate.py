"""``python -m router_lab.evaluate DATASET.jsonl``: how well the router routes.

Prints accuracy, recall on ``cloud`` items (hard prompts escalated), the share of
``local`` items kept local, the confusion table and the decision time (feature
extraction plus decision, p50/p99). ``--json FILE`` writes the same figures. Decisions
are taken as for an ``auto`` request with a reachable cloud and an idle local model, so
only the prompt decides.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_agent.router.features import extract_features
from edge_agent.router.model import load_model
from edge_agent.router.policy import HeuristicRouter, Route, Router, RouterConfig
from edge_agent.router.table import load_token_head, with_head_tokens
from inference.models import bundled_model_path
from router_lab.dataset import LabelledPrompt, read_dataset

__all__ = ["Figures", "figures", "main", "percentile", "route_all"]

AnyRouter = Router | HeuristicRouter


@dataclass(frozen=True)
class Figures:
    """What ``evaluate`` reports; ``confusion[label][predicted]`` counts items."""

    n: int
    accuracy: float
    cloud_recall: float
    local_kept: float
    cloud_share: float
    """Share of all items sent to the cloud (what escalation costs)."""
    confusion: dict[str, dict[str, int]]
    p50_ms: float
    p99_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def route_all(
    router: AnyRouter, items: Sequence[LabelledPrompt], tokenizer: Any = None
) -> tuple[list[Route], list[float]]:
    """Each item's route and decision time in ms (features, with ``tokenizer`` the token
    ids the router's head reads, and decision: as served)."""
    routes: list[Route] = []
    times_ms: list[float] = []
    for item in items:
        start = time.perf_counter_ns()
        features = extract_features(item.request)
        head = getattr(router, "token_head", None)
        if tokenizer is not None and head is not None:
            features = with_head_tokens(
                features,
                item.request,
                lambda text: tokenizer.tokenize(text.encode("utf-8"), add_bos=False),
                head,
            )
        decision = router.decide(features, requested="auto", cloud_available=True)
        times_ms.append((time.perf_counter_ns() - start) / 1e6)
        routes.append(decision.route)
    return routes, times_ms


def figures(
    labels: Sequence[Route], predicted: Sequence[Route], times_ms: Sequence[float] = ()
) -> Figures:
    """Accuracy, recall and the rest for ``predicted`` against ``labels``."""
    confusion = {a.value: {b.value: 0 for b in Route} for a in Route}
    for label, route in zip(labels, predicted, strict=True):
        confusion[label.value][route.value] += 1
    n = len(labels)
    cloud = confusion["cloud"]
    local = confusion["local"]
    return Figures(
        n=n,
        accuracy=_ratio(cloud["cloud"] + local["local"], n),
        cloud_recall=_ratio(cloud["cloud"], cloud["cloud"] + cloud["local"]),
        local_kept=_ratio(local["local"], local["local"] + local["cloud"]),
        cloud_share=_ratio(cloud["cloud"] + local["cloud"], n),
        confusion=confusion,
        p50_ms=percentile(times_ms, 50),
        p99_ms=percentile(times_ms, 99),
    )


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def render(result: Figures, *, title: str) -> str:
    """``result`` as the text the command prints."""
    c = result.confusion
    return "\n".join(
        [
            f"{title}: {result.n} prompts",
            f"  accuracy       {result.accuracy:.3f}",
            f"  cloud recall   {result.cloud_recall:.3f}   (cloud items sent to the cloud)",
            f"  local kept     {result.local_kept:.3f}   (local items kept local)",
            f"  cloud share    {result.cloud_share:.3f}   (all items sent to the cloud)",
            "  confusion      label \\ routed   local  cloud",
            f"                 local            {c['local']['local']:5d}  {c['local']['cloud']:5d}",
            f"                 cloud            {c['cloud']['local']:5d}  {c['cloud']['cloud']:5d}",
            f"  decision time  p50 {result.p50_ms:.3f} ms   p99 {result.p99_ms:.3f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.evaluate",
        description="Route every prompt of a labelled JSONL file (the dev set's format) and "
        "report accuracy, cloud recall, local kept, the confusion table and decision time.",
    )
    parser.add_argument("dataset", type=Path, help="JSONL: id, messages|prompt, label")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--router", choices=["learned", "heuristic"], default="learned", help="which router"
    )
    parser.add_argument("--model", type=Path, help="weights file (default: the bundled one)")
    parser.add_argument("--threshold", type=float, help="override the model's cloud threshold")
    parser.add_argument(
        "--features-only",
        action="store_true",
        help="without the token-embedding head (as an edge whose local model is not the "
        "bundled GGUF); by default the bundled weights route as an edge over the bundled model",
    )
    args = parser.parse_args(argv)
    tokenizer = None
    try:
        items = read_dataset(args.dataset)
        config = RouterConfig(cloud_threshold=args.threshold)
        head = None
        if args.router == "learned" and args.model is None and not args.features_only:
            head = load_token_head(bundled_model_path())
        router: AnyRouter = (
            Router(config, load_model(args.model), head)
            if args.router == "learned"
            else HeuristicRouter(config)
        )
        if head is not None:
            from router_lab.embed import token_table

            tokenizer = token_table()[0]
    except (OSError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    route_all(router, items[:20], tokenizer)  # warm up regex caches and the interpreter
    routes, times_ms = route_all(router, items, tokenizer)
    result = figures([i.label for i in items], routes, times_ms)
    sys.stdout.write(render(result, title=f"{args.router} router on {args.dataset}") + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
