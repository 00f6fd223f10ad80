"""Out-of-writer scores of a conversation and of its last ask alone.

Where a second look follows, the edge's first look scores a conversation of more than
one user turn twice, as a whole and as its last ask alone (``edge_agent.router.history``),
and keeps the lower score. ``paired_scores`` gives the lab both figures from one fit per
fold: the whole conversation's score (the first look, as shipped without a second) and
the lower of the two (the first half of the look).
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.router.history import last_ask_request
from router_lab.dataset import LabelledPrompt
from router_lab.lowo import Scorer

__all__ = ["paired_scores"]

Groups = dict[str, list[LabelledPrompt]]


def _alone(items: list[LabelledPrompt]) -> list[tuple[int, LabelledPrompt]]:
    """Each conversation's index and its last ask alone, as an item of its own."""
    out = []
    for n, item in enumerate(items):
        alone = last_ask_request(item.request)
        if alone is not None:
            out.append((n, replace(item, id=f"{item.id}#last-ask", request=alone)))
    return out


def paired_scores(
    groups: Groups, scorer: Scorer
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per writer, ``scorer``'s out-of-writer scores of its prompts as they are, and the
    lower of that and the last ask's alone (the same model scores both)."""
    whole: dict[str, list[float]] = {}
    lower: dict[str, list[float]] = {}
    for writer, held in groups.items():
        training = [i for w, items in groups.items() if w != writer for i in items]
        alone = _alone(held)
        scores = scorer(training, [*held, *(item for _, item in alone)])
        whole[writer] = scores[: len(held)]
        lower[writer] = list(whole[writer])
        for k, (n, _) in enumerate(alone):
            lower[writer][n] = min(lower[writer][n], scores[len(held) + k])
    return whole, lower
