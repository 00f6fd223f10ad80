"""The router's second look, measured leave-one-writer-out and fitted for shipping.

``python -m router_lab.second`` scores every writer's prompts from models fitted on the
other writers, three ways, and prints each as ``router_lab.lowo`` does:

- ``first look``: what ships without a second look (features + split token head);
- ``STATE state``: a logistic head on the local model's state alone: by default blocks
  12, 20 and 28's outputs at the last token as the edge's tap reads them in the prefill
  (``prefill12,20,28``: ``python -m router_lab.layers --prefill`` caches them), or
  ``prompt``, the final state (``router_lab.embed`` kind ``prompt``), or any
  ``layerN``/``prefillN`` (several blocks: ``prefillA,B,C``);
- ``two looks``: the edge with its second look (``edge_agent.router.second``): a first
  look at or above ``--sure`` goes to the cloud at once, any other prompt is scored by
  the mean log-odds of the features, the token head and the prompt head, the last
  counted ``--look-weight`` times (none with the elaboration floor: the state reads the
  conversation). Here the features and the token head each score a conversation as the
  lower of itself and its last ask alone (``router_lab.history``), as the edge does.

``--write PATH`` fits the prompt head on every writer and writes it with the two looks'
threshold, chosen on their out-of-writer scores by the same rule as the shipped weights,
the tensor it reads and its weight.
The figures also say how many prompts take the second look, and how many of those end
in the cloud (each of them waited for a local prefill first).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_agent.router.features import extract_features
from edge_agent.router.policy import Route
from edge_agent.router.second import PROMPT_HEAD_FILE, PromptHead
from edge_agent.router.table import file_sha256
from inference.state_tap import FINAL_STATE, tensor_names
from router_lab.dataset import LabelledPrompt
from router_lab.embed import LAYER_ROWS, _model_path, embed_items, layer_blocks
from router_lab.head import LogisticHead, fit_head
from router_lab.history import paired_scores
from router_lab.lowo import (
    EMBED_L2,
    LowoResult,
    Scorer,
    blend_many,
    embedding_scorer,
    features_scorer,
    group_by_writer,
    out_of_writer_scores,
    render,
    summarise,
)
from router_lab.origins import as_json, by_origin, checked_ids, render_origins
from router_lab.ship import lowo_metadata

__all__ = [
    "LOOK_WEIGHT",
    "STATE",
    "SURE",
    "TARGET_RECALL",
    "fit_prompt_head",
    "prompt_scorer",
    "prompt_scores",
    "two_looks",
    "unstandardised",
]

SURE = 0.8
"""The first look's score at or above which no second look is taken (0.7, 0.8 and 0.9
measured in docs/router.md: the means move by less than 0.005; 0.8 looks at 55 % of
the labelled prompts)."""

TARGET_RECALL = 0.965
"""Pooled cloud recall the two looks' threshold is chosen for (0.96 and 0.965 measured:
0.965 is the one whose mean recall reaches 0.97)."""
STATE = "prefill12,20,28"
"""The state the shipped head reads: blocks 12, 20 and 28's outputs side by side, as the
edge's tap reads them in the prefill (``python -m router_lab.layers --prefill
data/*.jsonl`` caches every block). Round 10, 18 writers: block 20 alone, which round 9
shipped, keeps 0.770 of the local prompts at the same recall, these three 0.795
(docs/router.md)."""
LOOK_WEIGHT = 3
"""The prompt head's share of the look's blend (the first look's two scores count one
each). Round 9, 17 writers, leave-one-writer-out: 3 scored at least as well as 1 and 2
for blocks 16, 20, 24 and the final state alike; round 10, blocks 12, 20 and 28: 3, 4,
6, 10 and 20 within 0.005 of each other (docs/router.md)."""

Groups = dict[str, list[LabelledPrompt]]


def _states(
    items: Sequence[LabelledPrompt], state: str = "prompt"
) -> tuple[np.ndarray, np.ndarray]:
    """Prompt states and which rows have one (a prompt past the context has none).
    ``state``: ``prompt`` (what the edge reads) or ``layerN`` (block N's output, lab
    only: ``router_lab.layers``)."""
    xs = embed_items(state, items)
    return xs, ~np.isnan(xs).any(axis=1)


def _fit(items: Sequence[LabelledPrompt], l2: float, state: str = "prompt") -> LogisticHead:
    xs, ok = _states(items, state)
    labels = np.array([int(i.label is Route.CLOUD) for i in items])
    return fit_head(xs[ok], labels[ok], l2=l2)


def prompt_scorer(l2: float = EMBED_L2, state: str = "prompt") -> Scorer:
    """A prompt head fitted on ``training``; a test prompt with no state scores 1 (the
    policy sends it to the cloud before any look)."""

    def score(training: Sequence[LabelledPrompt], test: Sequence[LabelledPrompt]) -> list[float]:
        head = _fit(training, l2, state)
        xs, ok = _states(test, state)
        p = np.ones(len(test))
        p[ok] = head.probability(xs[ok])
        return [float(v) for v in p]

    return score


def prompt_scores(
    groups: Groups, *, l2: float = EMBED_L2, state: str = "prompt"
) -> dict[str, list[float]]:
    """Each writer's prompts scored by a prompt head fitted on the other writers."""
    return out_of_writer_scores(groups, prompt_scorer(l2, state))


def two_looks(
    groups: Groups,
    features: dict[str, list[float]],
    split: dict[str, list[float]],
    prompt: dict[str, list[float]],
    *,
    sure: float = SURE,
    weight: int = LOOK_WEIGHT,
    lower: tuple[dict[str, list[float]], dict[str, list[float]]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[bool]]]:
    """The first look's scores, the two looks' scores, and which prompts took the second
    look, per writer (as ``policy.Router`` and ``second.SecondLook`` compute them, the
    prompt head counted ``weight`` times). ``lower``: the features' and the split head's
    scores where a look follows, each the lower of the conversation's and its last
    ask's alone (``history.paired_scores``); default: ``features`` and ``split``."""
    look_f, look_s = lower if lower is not None else (features, split)
    first: dict[str, list[float]] = {}
    final: dict[str, list[float]] = {}
    looked: dict[str, list[bool]] = {}
    for writer, items in groups.items():
        rows = zip(
            features[writer],
            split[writer],
            look_f[writer],
            look_s[writer],
            prompt[writer],
            items,
            strict=True,
        )
        first[writer], final[writer], looked[writer] = [], [], []
        for f, s, lf, ls, p, item in rows:
            elaboration = extract_features(item.request).elaboration
            look = blend_many([lf, ls], False) < sure  # no elaboration floor where a look follows
            first[writer].append(blend_many([f, s], elaboration))
            final[writer].append(blend_many([lf, ls] + [p] * weight, False) if look else 1.0)
            looked[writer].append(look)
    return first, final, looked


def unstandardised(head: LogisticHead) -> tuple[np.ndarray, float]:
    """``head`` as weights and a bias on raw states (what the edge computes)."""
    weights = head.weights / head.scales
    return weights, head.bias - float(np.dot(weights, head.means))


def tensor_of(state: str) -> str:
    """llama.cpp's name for the tensor a ``state`` kind reads (``inference.state_tap``):
    ``prompt`` and block ``LAYER_ROWS - 1`` are the final state, block N's output is
    ``l_out-N``; several blocks (``prefillA,B,C``) are their names joined by commas."""
    if state == "prompt":
        return FINAL_STATE
    if (layer := layer_blocks(state)) is None:
        raise ValueError("not prompt, layerN or prefillN (or prefillA,B,C)")
    _, blocks = layer
    if past := [b for b in blocks if not b < LAYER_ROWS]:
        raise ValueError(f"no block {past[0]} in the bundled model")
    spec = ",".join(FINAL_STATE if b == LAYER_ROWS - 1 else f"l_out-{b}" for b in blocks)
    tensor_names(spec)  # raises unless as many and as distinct as the tap reads
    return spec


def fit_prompt_head(
    groups: Groups,
    *,
    threshold: float,
    sure: float,
    l2: float,
    metadata: dict[str, object],
    state: str = "prompt",
    weight: float = LOOK_WEIGHT,
) -> PromptHead:
    """The head on every writer's ``state``, unstandardised for the edge."""
    items = [i for items in groups.values() for i in items]
    weights, bias = unstandardised(_fit(items, l2, state))
    return PromptHead(
        gguf_sha256=file_sha256(Path(_model_path())),
        weights=weights,
        bias=bias,
        sure=sure,
        threshold=threshold,
        metadata=metadata,
        tensor=tensor_of(state),
        weight=weight,
    )


def _escalated_after_look(
    result: LowoResult, looked: dict[str, list[bool]]
) -> tuple[int, int, int]:
    """Prompts that took the look, those it escalated, and all prompts."""
    n_look = n_up = n = 0
    for fold in result.folds:
        for score, look in zip(result.scores[fold.writer], looked[fold.writer], strict=True):
            n += 1
            n_look += look
            n_up += look and score >= fold.threshold
    return n_look, n_up, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router_lab.second",
        description="Leave-one-writer-out figures of the router's second look.",
    )
    parser.add_argument("datasets", type=Path, nargs="*", help="default: data/*.jsonl")
    parser.add_argument("--sure", type=float, default=SURE)
    parser.add_argument(
        "--look-weight",
        type=int,
        default=LOOK_WEIGHT,
        help="the prompt head's share of the look's blend (the first look's two count one)",
    )
    parser.add_argument("--target-recall", type=float, default=TARGET_RECALL)
    parser.add_argument("--l2", type=float, default=EMBED_L2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--state",
        default=STATE,
        help=f"the second look's input (default {STATE}): prompt (the final state), "
        "layerN (block N's output, cached by python -m router_lab.layers) or prefillN "
        "(read from the prompt's own prefill as the edge's tap does, cached with --prefill); "
        "several blocks side by side: prefillA,B,C (up to 4)",
    )
    parser.add_argument(
        "--write", type=Path, help=f"write the prompt head (its {PROMPT_HEAD_FILE})"
    )
    args = parser.parse_args(argv)
    try:
        tensor_of(args.state)
    except ValueError as exc:
        parser.error(f"--state {args.state}: {exc}")
    paths = args.datasets or sorted(Path("data").glob("*.jsonl"))
    groups = group_by_writer(paths)
    if len(groups) < 2:
        print("second: leave-one-writer-out needs at least two writers", file=sys.stderr)
        return 2
    features, features_lower = paired_scores(groups, features_scorer)
    split, split_lower = paired_scores(groups, embedding_scorer("split"))
    prompt = prompt_scores(groups, l2=args.l2, state=args.state)
    first, final, looked = two_looks(
        groups,
        features,
        split,
        prompt,
        sure=args.sure,
        weight=args.look_weight,
        lower=(features_lower, split_lower),
    )

    def summary(name: str, scores: dict[str, list[float]]) -> LowoResult:
        result = summarise(
            groups, scores, rule="recall", target_recall=args.target_recall, scorer=name
        )
        sys.stdout.write(render(result) + "\n")
        return result

    summary("first look (features+split)", first)
    summary(f"{args.state} state", prompt)
    result = summary(f"two looks (sure {args.sure:g})", final)
    n_look, n_up, n = _escalated_after_look(result, looked)
    sys.stdout.write(
        f"second look taken for {n_look} of {n} prompts; {n_up} of them escalated after "
        "the local prefill\n"
    )
    origins = by_origin(result, groups, checked_ids())
    sys.stdout.write(render_origins(origins) + "\n")
    if args.json is not None:
        body = {**asdict(result), "by_origin": as_json(origins)}
        args.json.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    if args.write is not None:
        head = fit_prompt_head(
            groups,
            threshold=result.shipped_threshold,
            sure=args.sure,
            l2=args.l2,
            state=args.state,
            weight=args.look_weight,
            metadata={
                "trained_on": [str(p) for p in paths],
                "state": args.state,
                "threshold_rule": f"leave-one-writer-out, recall {args.target_recall:g}",
                "lowo": {
                    **lowo_metadata(result),
                    "second_look": {"taken": n_look, "escalated": n_up, "prompts": n},
                },
            },
        )
        args.write.write_text(head.to_json() + "\n", encoding="utf-8")
        sys.stdout.write(
            f"prompt head on {head.tensor} written to {args.write} "
            f"(threshold {head.threshold:.4f})\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
