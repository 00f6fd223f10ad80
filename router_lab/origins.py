"""Where the leave-one-writer-out misses are, by where each prompt's label came from.

Since round 8 a prompt whose answer can be checked is labelled by whether the bundled
model answers it right (``router_lab.checked``), the rest by what their writer wrote.
The two kinds of label ask different things of the router: a written label asks it to
recognise an easy or hard prompt, an outcome label asks it to foresee whether this model
gets a short ask right. One figure over both hides which of the two a miss is in, so
``lowo`` and ``second`` also print each prompt's routing at its own fold's threshold,
grouped four ways: local or cloud, as written or by outcome.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.router.policy import Route
from router_lab.checked import OUTCOMES, read_jsonl
from router_lab.dataset import LabelledPrompt

if TYPE_CHECKING:  # lowo prints these: a runtime import would be circular
    from router_lab.lowo import LowoResult

__all__ = ["Origin", "as_json", "by_origin", "checked_ids", "render_origins"]


@dataclass(frozen=True)
class Origin:
    """Prompts of one label and one origin, and the share of them routed as labelled."""

    name: str
    n: int
    routed_right: int

    @property
    def share(self) -> float:
        return self.routed_right / self.n if self.n else 0.0


def checked_ids(path: Path = OUTCOMES) -> set[str]:
    """The prompts labelled by outcome (none when the outcomes file is absent)."""
    return {row["id"] for row in read_jsonl(path)} if path.exists() else set()


def by_origin(
    result: LowoResult, groups: dict[str, list[LabelledPrompt]], checked: Collection[str]
) -> list[Origin]:
    """Each fold's prompts routed at that fold's threshold, counted by label and origin."""
    counts = {
        (label, outcome): [0, 0] for label in (Route.LOCAL, Route.CLOUD) for outcome in (0, 1)
    }
    for fold in result.folds:
        for item, score in zip(groups[fold.writer], result.scores[fold.writer], strict=True):
            routed = Route.CLOUD if score >= fold.threshold else Route.LOCAL
            tally = counts[(item.label, int(item.id in checked))]
            tally[0] += 1
            tally[1] += routed is item.label
    names = {
        (Route.LOCAL, 0): "local as written (nothing to check): kept",
        (Route.LOCAL, 1): "local by outcome (the model answers right): kept",
        (Route.CLOUD, 1): "cloud by outcome (the model answers wrong): sent",
        (Route.CLOUD, 0): "cloud as written (nothing to check): sent",
    }
    return [Origin(name, *counts[key]) for key, name in names.items()]


def render_origins(origins: list[Origin]) -> str:
    lines = ["  by where the label came from, each fold at its own threshold:"]
    lines += [f"    {o.name:<52} {o.routed_right:5d} / {o.n:<5d} {o.share:6.3f}" for o in origins]
    return "\n".join(lines)


def as_json(origins: list[Origin]) -> list[dict[str, Any]]:
    return [
        {"origin": o.name, "n": o.n, "routed_right": o.routed_right, "share": o.share}
        for o in origins
    ]
