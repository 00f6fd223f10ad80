"""Boosted decision trees over the router's feature vector: what scores a request.

A tree is nested ``(feature index, threshold, left, right)`` tuples ending in leaf
values; the score is ``log_odds(cloud) = base + rate * sum(leaf of each tree)``. Small
trees say what an additive model cannot ("long, *unless* the closing ask is trivial", "a
short follow-up is hard *if* the conversation was"); why depth 4 and 150 rounds, and how
they are fitted, is the lab's business (``router_lab.boost``).

Scoring is pure Python: at load the trees are compiled into one function of nested
comparisons (150 depth-4 trees: about 20 microseconds a score), built from numbers alone
so that a weights file cannot inject code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

__all__ = ["Node", "Trees", "leaf"]

Node = float | tuple[int, float, "Node", "Node"]
"""A leaf's value, or ``(feature index, threshold, node if x <= threshold, node if >)``."""


@dataclass(frozen=True)
class Trees:
    """``log_odds(cloud) = base + rate * sum(tree(x))``."""

    base: float
    rate: float
    trees: tuple[Node, ...]
    _leaves: Callable[[Sequence[float]], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_leaves", _compile(self.trees))

    def log_odds(self, x: Sequence[float]) -> float:
        return self.base + self.rate * self._leaves(x)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "rate": self.rate, "trees": [_dump(t) for t in self.trees]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trees:
        return cls(
            base=float(data["base"]),
            rate=float(data["rate"]),
            trees=tuple(_load(t) for t in data["trees"]),
        )


def leaf(node: Node, x: Sequence[float]) -> float:
    """The leaf value ``node`` gives ``x``, walking the tree (what the compiled function
    computes for every tree at once)."""
    while not isinstance(node, float):
        j, threshold, left, right = node
        node = left if x[j] <= threshold else right
    return node


def _compile(trees: Sequence[Node]) -> Callable[[Sequence[float]], float]:
    """One Python function that sums every tree's leaf for ``x``: each tree becomes nested
    conditional expressions, so scoring runs as bytecode comparisons instead of a loop
    that unpacks a tuple per node (150 depth-4 trees: ~20 microseconds, not ~75).

    The source is built from numbers alone (``_load`` casts every feature index to
    ``int`` and every threshold and leaf to ``float``; non-finite ones are refused here),
    and evaluated with no builtins, so a weights file cannot inject code. It sums with
    ``math.fsum`` over the leaves in tree order: the value ``leaf`` gives tree by tree."""

    def expression(node: Node) -> str:
        if isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"tree leaf {node!r} is not finite")
            return repr(node)
        j, threshold, left, right = node
        if not isinstance(j, int) or not math.isfinite(threshold):
            raise ValueError(f"bad tree split ({j!r}, {threshold!r})")
        return f"({expression(left)} if x[{j}] <= {threshold!r} else {expression(right)})"

    source = f"lambda x: fsum(({''.join(expression(t) + ',' for t in trees)}))"
    function = eval(
        compile(source, "<router trees>", "eval"), {"__builtins__": {}, "fsum": math.fsum}
    )
    return cast(Callable[[Sequence[float]], float], function)


def _dump(node: Node) -> Any:
    if isinstance(node, float):
        return round(node, 6)
    j, threshold, left, right = node
    return [j, round(threshold, 6), _dump(left), _dump(right)]


def _load(data: Any) -> Node:
    if isinstance(data, int | float):
        return float(data)
    j, threshold, left, right = data
    return (int(j), float(threshold), _load(left), _load(right))
