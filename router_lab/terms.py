"""Fitting the word-evidence table (``edge_agent.router.terms.TermTable``) from labelled
prompts: smoothed naive-Bayes log-odds of ``cloud`` against ``local`` per hashed term."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.router.terms import TermTable

__all__ = ["MIN_DOCUMENTS", "SMOOTHING", "Doc", "fit_term_table", "leave_one_out"]

Doc = tuple[frozenset[int], int]
"""A prompt's hashed terms (``terms.term_buckets``) and its label (1 = cloud)."""

MIN_DOCUMENTS = 2
"""A term seen in fewer labelled prompts than this says nothing (a name, a number)."""
SMOOTHING = 1.0
"""Add-one smoothing of each term's document frequencies."""


def fit_term_table(docs: Sequence[Doc]) -> TermTable:
    """The table of every term seen in at least ``MIN_DOCUMENTS`` of ``docs``."""
    counts = _Counts.of(docs)
    return TermTable(
        {b: counts.log_odds(df) for b, df in counts.df.items() if df[0] + df[1] >= MIN_DOCUMENTS}
    )


def leave_one_out(docs: Sequence[Doc]) -> list[float]:
    """Each doc's evidence from a table of all the *other* docs: what a prompt the table
    never saw would get. Fitting the models on in-sample evidence would teach them to
    trust the table far more than it deserves."""
    counts = _Counts.of(docs)
    out = []
    for terms, label in docs:
        known = []
        for b in terms:
            df = list(counts.df[b])
            df[label] -= 1
            if df[0] + df[1] >= MIN_DOCUMENTS:
                known.append(counts.log_odds((df[0], df[1]), minus=label))
        out.append(math.fsum(known) / len(known) if known else 0.0)
    return out


@dataclass
class _Counts:
    df: dict[int, tuple[int, int]]
    """bucket -> (local documents, cloud documents) containing it."""
    n: tuple[int, int]

    @classmethod
    def of(cls, docs: Sequence[Doc]) -> _Counts:
        df: dict[int, tuple[int, int]] = {}
        n = [0, 0]
        for terms, label in docs:
            n[label] += 1
            for b in terms:
                local, cloud = df.get(b, (0, 0))
                df[b] = (local + (label == 0), cloud + (label == 1))
        return cls(df, (n[0], n[1]))

    def log_odds(self, df: tuple[int, int], minus: int | None = None) -> float:
        """A term's log-odds from its ``(local, cloud)`` document counts; ``minus`` is
        the label of a doc left out of the totals."""
        n_local = self.n[0] - (minus == 0)
        n_cloud = self.n[1] - (minus == 1)
        p_cloud = (df[1] + SMOOTHING) / (n_cloud + 2 * SMOOTHING)
        p_local = (df[0] + SMOOTHING) / (n_local + 2 * SMOOTHING)
        return math.log(p_cloud / p_local)
