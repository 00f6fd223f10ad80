"""``python -m router_lab.snapshot OUT.json``: the router's decision on every labelled prompt.

For every prompt of every ``data/*.jsonl`` file it records what the edge's default router
decides for an ``auto`` request with a reachable cloud and an idle local model (route,
reason, ``p_cloud`` as its exact ``repr``), the feature vector the model
scored (each value's ``repr``), the prompt's hashed terms and, when the shipped
token-embedding head matches the bundled GGUF, the routing text's token ids (the
decision is then the blended one, as on an edge running the bundled model). Two more
columns widen the check: the reason the learned router would give if the prompt were
escalated (threshold near 0, so ``_explain`` runs on every prompt) and the hand-written
baseline's decision.

Run it before and after a change that must not move the router (a refactor, a new word
list format) and compare the two files byte for byte: ``cmp before.json after.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge_agent.router import HeuristicRouter, Router, RouterConfig, extract_features
from edge_agent.router.table import load_token_head, routing_text
from edge_agent.settings import EdgeSettings
from inference.models import bundled_model_path
from router_lab.dataset import read_dataset
from router_lab.embed import token_table

__all__ = ["main", "snapshot"]

DATA = Path("data")


def snapshot(paths: list[Path]) -> list[dict[str, Any]]:
    """One record per labelled prompt of ``paths``, in file and line order."""
    # The limits an edge agent runs with by default: built from the settings' defaults,
    # not the environment, so a TANDEM_* variable cannot skew it.
    config = RouterConfig.from_settings(EdgeSettings.model_construct())
    head = load_token_head(bundled_model_path())
    tokenizer = token_table()[0] if head is not None else None
    router = Router(config, token_head=head)
    explainer = Router(replace(config, cloud_threshold=1e-9), router.model)
    baseline = HeuristicRouter(config)
    records: list[dict[str, Any]] = []
    for path in paths:
        for item in read_dataset(path):
            features = extract_features(item.request)
            if tokenizer is not None:  # as the edge does: ids from the local tokeniser
                text = routing_text(item.request).encode("utf-8")
                ids = tuple(tokenizer.tokenize(text, add_bos=False))
                features = replace(features, ask_tokens=ids)
            decision = router.decide(features, requested="auto", cloud_available=True)
            explained = explainer.decide(features, requested="auto", cloud_available=True)
            heuristic = baseline.decide(features, requested="auto", cloud_available=True)
            records.append(
                {
                    "file": path.name,
                    "id": item.id,
                    "route": decision.route.value,
                    "reason": decision.reason.value,
                    "p_cloud": repr(decision.p_cloud),
                    "vector": [repr(v) for v in router.model.vector(features)],
                    "terms": sorted(features.terms),
                    "ask_tokens": list(features.ask_tokens or ()),
                    "reason_if_escalated": explained.reason.value,
                    "heuristic": f"{heuristic.route.value}/{heuristic.reason.value}",
                }
            )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.snapshot",
        description="Record the default router's decision and feature vector for every "
        "prompt of data/*.jsonl, to compare before and after a change.",
    )
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of labelled JSONL files")
    args = parser.parse_args(argv)
    paths = sorted(args.data.glob("*.jsonl"))
    if not paths:
        print(f"snapshot: no *.jsonl in {args.data}", file=sys.stderr)
        return 2
    records = snapshot(paths)
    args.out.write_text(json.dumps(records, indent=0, ensure_ascii=False) + "\n", "utf-8")
    sys.stdout.write(f"{len(records)} prompts from {len(paths)} files written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
