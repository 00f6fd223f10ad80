"""Draw ``docs/router_tradeoff.png``: what moving the router's threshold buys and costs.

Every dev prompt's score comes from 10-fold cross-validation
(``router_lab.train.cross_validate``, the training script's defaults), so each point is
what a router that never saw the prompt would do. One threshold is swept over all of
them; the curves are accuracy, cloud share (what escalation costs), cloud recall and
local kept. The dotted line is the shipped weights' threshold.

    .venv/bin/python bench/router_tradeoff.py [--out docs/router_tradeoff.png]

matplotlib comes with the ``dev`` extra only: the agent never draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from edge_agent.router.model import load_model
from edge_agent.router.policy import Route
from router_lab.dataset import read_dataset
from router_lab.evaluate import figures
from router_lab.train import L2, TARGET_RECALL, cross_validate, rows_of


def main() -> None:
    parser = argparse.ArgumentParser(description="Plot the router's threshold trade-off.")
    parser.add_argument("--dev", type=Path, default=Path("data/router_dev.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("docs/router_tradeoff.png"))
    args = parser.parse_args()
    rows = rows_of(read_dataset(args.dev))
    model = load_model()
    # The same training side as the shipped weights: every file they were trained on
    # besides the dev set only ever joins the training folds.
    trained_on = (model.metadata or {}).get("trained_on", [])
    extra = [r for name in trained_on[1:] for r in rows_of(read_dataset(Path(name)))]
    l2 = float((model.metadata or {}).get("l2", L2))
    cv = cross_validate(rows, extra, k=10, inner_k=5, seed=7, target_recall=TARGET_RECALL, l2=l2)
    truth = [Route.CLOUD if label else Route.LOCAL for label in cv.labels]
    steps = [i / 200 for i in range(1, 200)]
    curves: dict[str, list[float]] = {"accuracy": [], "cloud share": [], "cloud recall": []}
    curves["local kept"] = []
    for t in steps:
        f = figures(truth, [Route.CLOUD if s >= t else Route.LOCAL for s in cv.scores])
        curves["accuracy"].append(f.accuracy)
        curves["cloud share"].append(f.cloud_share)
        curves["cloud recall"].append(f.cloud_recall)
        curves["local kept"].append(f.local_kept)
    threshold = model.threshold
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    styles = {"accuracy": "-", "cloud share": "-", "cloud recall": "--", "local kept": "--"}
    for name, values in curves.items():
        ax.plot(steps, values, styles[name], label=name, linewidth=2 if styles[name] == "-" else 1)
    ax.axvline(threshold, color="grey", linestyle=":", label=f"shipped threshold {threshold:.2f}")
    ax.set_xlabel("cloud threshold on the learned score")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 1)
    ax.set_title(f"Router trade-off, {len(rows)} dev prompts, 10-fold cross-validated scores")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}; cross-validated figures at a few thresholds:")
    for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        i = steps.index(t)
        print(
            f"  {t:.1f}: accuracy {curves['accuracy'][i]:.3f}  recall "
            f"{curves['cloud recall'][i]:.3f}  kept {curves['local kept'][i]:.3f}  "
            f"cloud share {curves['cloud share'][i]:.3f}"
        )


if __name__ == "__main__":
    main()
