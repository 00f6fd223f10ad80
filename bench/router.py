"""Decision time of the learned router against the heuristic baseline, same run.

Routes every prompt of a labelled JSONL file (default: the dev set) ``--rounds`` times
through each router, interleaved so both see the same machine state, timing feature
extraction plus decision as a request pays it. Prints p50/p99 per router and the ratios
learned/heuristic. Machines here are shared and noisy: read the ratios.

    .venv/bin/python bench/router.py [--rounds 20] [DATASET.jsonl]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import percentile
from edge_agent.router import HeuristicRouter, Router, RouterConfig
from router_lab.dataset import read_dataset
from router_lab.evaluate import route_all


def main() -> None:
    parser = argparse.ArgumentParser(description="Router decision time, learned vs heuristic.")
    parser.add_argument("dataset", nargs="?", type=Path, default=Path("data/router_dev.jsonl"))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    items = read_dataset(args.dataset)
    routers: dict[str, Router | HeuristicRouter] = {
        "heuristic": HeuristicRouter(RouterConfig()),
        "learned": Router(RouterConfig()),
    }
    times: dict[str, list[float]] = {name: [] for name in routers}
    for router in routers.values():  # warm-up: regex compilation caches, imports
        route_all(router, items)
    for _ in range(args.rounds):
        for name, router in routers.items():
            times[name].extend(route_all(router, items)[1])
    figures = {name: (percentile(t, 50), percentile(t, 99)) for name, t in times.items()}
    print(f"{len(items)} prompts x {args.rounds} rounds from {args.dataset}")
    for name, (p50, p99) in figures.items():
        print(f"  {name:9s}  p50 {p50:.3f} ms   p99 {p99:.3f} ms")
    (l50, l99), (h50, h99) = figures["learned"], figures["heuristic"]
    print(f"  learned/heuristic  p50 x{l50 / h50:.2f}   p99 x{l99 / h99:.2f}")


if __name__ == "__main__":
    main()
