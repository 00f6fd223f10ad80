"""Word evidence: hashed terms and the naive-Bayes table (pure, no model)."""

from __future__ import annotations

import itertools
import zlib

import pytest

from edge_agent.router.terms import BUCKETS, MIN_DOCUMENTS, TermTable, term_buckets


def reference_buckets(words: list[str], last: str, history: list[str]) -> frozenset[int]:
    """The terms spelled out as strings and hashed one by one: what the shipped weights'
    buckets mean. ``term_buckets`` never builds these strings; it must agree."""
    terms = {f"u:{w}" for w in words}
    terms |= {f"u:{a} {b}" for a, b in itertools.pairwise(words)}
    for run in ("".join(c if "\u3040" <= c <= "\u9fff" else " " for c in last)).split():
        terms |= {f"u:{run[i : i + 2]}" for i in range(max(1, len(run) - 1))}
    terms |= {f"h:{w}" for w in history}
    return frozenset(zlib.crc32(t.encode()) % BUCKETS for t in terms)


@pytest.mark.parametrize(
    ("words", "last", "history"),
    [
        ([], "", []),
        (["what", "does", "ubiquitous", "mean"], "what does ubiquitous mean", []),
        (["now", "in", "rust", "now"], "now in rust now", ["prove", "it", "prove"]),
        (["naïve", "café", "don't"], "naïve café don't", ["größe"]),
        ([], "猫", []),  # a lone character is a term by itself
        ([], "请帮我总结 それは日本語です。x 한국어", ["上下文"]),
    ],
)
def test_buckets_are_the_crc_of_the_spelled_out_terms(
    words: list[str], last: str, history: list[str]
) -> None:
    assert term_buckets(words, last, history) == reference_buckets(words, last, history)


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
    table = TermTable.fit(docs())
    assert table.evidence(term_buckets(["prove"], "prove", [])) > 0
    assert table.evidence(term_buckets(["hello"], "hello", [])) < 0
    assert table.evidence(term_buckets(["zebra"], "zebra", [])) == 0, "unknown terms say nothing"


def test_leave_one_out_is_the_table_fitted_without_that_prompt() -> None:
    data = docs()
    for i, evidence in enumerate(TermTable.leave_one_out(data)):
        rest = TermTable.fit(data[:i] + data[i + 1 :])
        assert evidence == pytest.approx(rest.evidence(data[i][0]))


def test_rare_terms_are_left_out_and_the_table_round_trips() -> None:
    table = TermTable.fit(docs())
    seen_once = term_buckets(["lemma"], "lemma", [])
    assert MIN_DOCUMENTS > 1 and seen_once.isdisjoint(table.log_odds)
    again = TermTable.from_dict(table.to_dict())
    assert again.log_odds == pytest.approx(table.log_odds, abs=1e-4)
