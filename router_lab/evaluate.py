"""``python -m router_lab.evaluate DATASET.jsonl``: how well the router routes.

Prints accuracy, recall on ``cloud`` items (hard prompts escalated), the share of
``local`` items kept local, the confusion table and the decision time (feature
extraction plus decision, p50/p99). ``--json FILE`` writes the same figures. Decisions
are taken as for an ``auto`` request with a reachable cloud and an idle local model, so
only the prompt decides. With the bundled weights the router takes its second look as
an edge does (``edge_agent.router.second``): the bundled model's runner prefills each
prompt the first look was not sure of, and the look decides; the figures then say how
many prompts took it, how many it escalated, and the prefill's time (p50/p99): the delay
an escalation after the look adds, on this machine.
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

from bench.common import percentile as nearest_rank
from edge_agent.router.features import extract_features
from edge_agent.router.model import load_model
from edge_agent.router.policy import Decision, HeuristicRouter, Route, Router, RouterConfig
from edge_agent.router.second import load_prompt_head
from edge_agent.router.table import load_token_head, with_head_tokens
from inference.models import bundled_model_path
from router_lab.dataset import LabelledPrompt, read_dataset

__all__ = [
    "Figures",
    "Looks",
    "decide_all",
    "figures",
    "finish_looks",
    "main",
    "percentile",
    "route_all",
]

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
    """The benchmarks' nearest-rank percentile (``bench.common``), but 0 for no values:
    the figures are written as JSON, which has no NaN."""
    return nearest_rank(values, q) if values else 0.0


def route_all(
    router: AnyRouter, items: Sequence[LabelledPrompt], tokenizer: Any = None
) -> tuple[list[Route], list[float]]:
    """Each item's route and decision time in ms (features, with ``tokenizer`` the token
    ids the router's head reads, and decision: as served). A decision left to the second
    look counts as its first look's route: ``decide_all`` finishes it."""
    decisions, times_ms = decide_all(router, items, tokenizer)
    return [d.route for d in decisions], times_ms


def decide_all(
    router: AnyRouter, items: Sequence[LabelledPrompt], tokenizer: Any = None
) -> tuple[list[Decision], list[float]]:
    """``route_all``'s decisions themselves (a second look still pending in some)."""
    decisions: list[Decision] = []
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
                last_ask=getattr(router, "prompt_head", None) is not None,
            )
        decision = router.decide(features, requested="auto", cloud_available=True)
        times_ms.append((time.perf_counter_ns() - start) / 1e6)
        decisions.append(decision)
    return decisions, times_ms


@dataclass(frozen=True)
class Looks:
    """The second looks taken: how many, how many escalated, and the prefill's time."""

    taken: int
    escalated: int
    prefill_p50_ms: float
    prefill_p99_ms: float


def finish_looks(
    decisions: Sequence[Decision], items: Sequence[LabelledPrompt]
) -> tuple[list[Route], Looks]:
    """Each decision's final route, a pending second look taken as the edge takes it:
    the bundled model's runner (one thread) prefills the prompt and hands over its state."""
    import asyncio

    from inference import ContextTooLong
    from router_lab.embed import prompt_runner

    routes = [d.route for d in decisions]
    pending = [n for n, d in enumerate(decisions) if d.second_look is not None]
    if not pending:
        return routes, Looks(0, 0, 0.0, 0.0)
    runner = prompt_runner()  # a prompt head is only attached for the bundled GGUF
    escalated = 0
    times_ms: list[float] = []

    async def look() -> None:
        nonlocal escalated
        await runner.load()
        tensor = next(d.second_look.head.tensor for d in decisions if d.second_look is not None)
        if not runner.read_state_from(tensor):  # as the edge's pipeline does
            await runner.aclose()
            raise SystemExit(f"the prompt head reads {tensor}, which needs inference._tap")
        try:
            for n in pending:
                pending_look = decisions[n].second_look
                assert pending_look is not None
                start = time.perf_counter_ns()
                try:
                    state = await runner.prompt_state(items[n].request)
                except ContextTooLong:
                    routes[n] = Route.CLOUD  # the edge's policy would have sent it there
                    continue
                times_ms.append((time.perf_counter_ns() - start) / 1e6)
                if pending_look.escalates(pending_look.score(state)):
                    routes[n] = Route.CLOUD
                    escalated += 1
        finally:
            await runner.aclose()

    asyncio.run(look())
    p50, p99 = percentile(times_ms, 50), percentile(times_ms, 99)
    return routes, Looks(len(pending), escalated, p50, p99)


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
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the figures, and each misrouted prompt (id, label, route, "
        "category), to this file",
    )
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
    parser.add_argument(
        "--no-second-look",
        action="store_true",
        help="the first look alone (as an edge with --no-router-second-look)",
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
            if not args.no_second_look and isinstance(router, Router):
                router.attach_prompt_head(load_prompt_head(bundled_model_path()))
    except (OSError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    route_all(router, items[:20], tokenizer)  # warm up regex caches and the interpreter
    decisions, times_ms = decide_all(router, items, tokenizer)
    routes, looks = finish_looks(decisions, items)
    result = figures([i.label for i in items], routes, times_ms)
    sys.stdout.write(render(result, title=f"{args.router} router on {args.dataset}") + "\n")
    if looks.taken:
        sys.stdout.write(
            f"  second look    taken for {looks.taken}, escalated {looks.escalated}; prefill "
            f"p50 {looks.prefill_p50_ms:.0f} ms   p99 {looks.prefill_p99_ms:.0f} ms\n"
        )
    if args.json is not None:
        misrouted = [
            {"id": i.id, "label": i.label.value, "routed": r.value, "category": i.category}
            for i, r in zip(items, routes, strict=True)
            if r is not i.label
        ]
        body = {**asdict(result), "second_look": asdict(looks), "misrouted": misrouted}
        args.json.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
