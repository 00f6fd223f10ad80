"""What ``python -m router_lab.lowo --write-weights`` ships: the recipe fitted on every
writer, at the threshold leave-one-writer-out chose.

Apart from ``router_lab.lowo`` because measuring and shipping change for different
reasons: the folds are the experiment, these files are what every edge loads (the
features' weights, ``router_model.json``, and the token head beside them,
``edge_agent.router.table``), each carrying the figures it was chosen on.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from router_lab.dataset import LabelledPrompt
from router_lab.lowo import EMBED_L2, LowoResult
from router_lab.train import fit, rows_of

__all__ = ["lowo_metadata", "write_token_head", "write_weights"]


def lowo_metadata(result: LowoResult) -> dict[str, object]:
    """The figures a shipped file carries in its metadata."""
    return {
        "writers": len(result.folds),
        "mean": {k: round(v, 4) for k, v in result.mean.items()},
        "worst": {k: round(v, 4) for k, v in result.worst.items()},
    }


def write_token_head(
    out: Path, groups: dict[str, list[LabelledPrompt]], result: LowoResult, kind: str = "table"
) -> None:
    """The token-embedding head fitted on every writer, folded for the bundled GGUF, at
    the blended scores' shipped threshold (``edge_agent.router.table``)."""
    from router_lab.tokenhead import fit_token_head

    head = fit_token_head(
        [i for items in groups.values() for i in items],
        threshold=result.shipped_threshold,
        l2=EMBED_L2,
        kind=kind,
        metadata={
            "scorer": result.scorer,
            "threshold_rule": f"leave-one-writer-out, {result.rule}",
            "lowo": lowo_metadata(result),
        },
    )
    head.write(out)
    sys.stdout.write(f"token head written to {out} (threshold {head.threshold:.4f})\n")


def write_weights(
    out: Path, groups: dict[str, list[LabelledPrompt]], result: LowoResult, paths: list[str]
) -> None:
    """The features recipe fitted on every writer, at ``result``'s shipped threshold."""
    model = fit(rows_of([i for items in groups.values() for i in items]))
    metadata = {
        "trained_on": paths,
        "rows": sum(len(items) for items in groups.values()),
        "trees": True,
        "threshold_rule": f"leave-one-writer-out, {result.rule}",
        "lowo": lowo_metadata(result),
    }
    model = replace(model, threshold=result.shipped_threshold, metadata=metadata)
    out.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"weights written to {out} (threshold {model.threshold:.4f})\n")
