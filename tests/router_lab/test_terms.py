"""Fitting the word-evidence table: leans the right way, leaves out rare terms, and its
leave-one-out evidence is what a table without that prompt gives."""

from __future__ import annotations

import pytest

from edge_agent.router.terms import TermTable, term_buckets
from router_lab.terms import MIN_DOCUMENTS, fit_term_table, leave_one_out


def docs() -> list[tuple[frozenset[int], int]]:
    rows = [
        (["prove", "that", "primes"], 1),
        (["prove", "the", "lemma"], 1),
        (["write", "a", "proof"], 1),
        (["hello", "there"], 0),
        (["hello", "friend"], 0),
        (["what", "time", "is", "it"], 0),
        (["the", "time", "please"], 0),
    ]
    return [(term_buckets(words, " ".join(words), []), label) for words, label in rows]


def test_evidence_leans_towards_the_label_a_word_came_with() -> None:
    table = fit_term_table(docs())
    assert table.evidence(term_buckets(["prove"], "prove", [])) > 0
    assert table.evidence(term_buckets(["hello"], "hello", [])) < 0
    assert table.evidence(term_buckets(["zebra"], "zebra", [])) == 0, "unknown terms say nothing"


def test_leave_one_out_is_the_table_fitted_without_that_prompt() -> None:
    data = docs()
    for i, evidence in enumerate(leave_one_out(data)):
        rest = fit_term_table(data[:i] + data[i + 1 :])
        assert evidence == pytest.approx(rest.evidence(data[i][0]))


def test_rare_terms_are_left_out_and_the_table_round_trips() -> None:
    table = fit_term_table(docs())
    seen_once = term_buckets(["lemma"], "lemma", [])
    assert MIN_DOCUMENTS > 1 and seen_once.isdisjoint(table.log_odds)
    again = TermTable.from_dict(table.to_dict())
    assert again.log_odds == pytest.approx(table.log_odds, abs=1e-4)
