"""Word evidence at run time: hashed terms and the table's score (pure, no model)."""

from __future__ import annotations

import itertools
import zlib

import pytest

from edge_agent.router.terms import BUCKETS, TermTable, term_buckets


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


def test_evidence_is_the_mean_log_odds_of_the_known_terms() -> None:
    table = TermTable({1: 2.0, 2: -1.0})
    assert table.evidence({1, 2, 3}) == 0.5
    assert table.evidence({3}) == 0.0, "unknown terms say nothing"


def test_the_table_round_trips_to_four_decimals() -> None:
    table = TermTable({5: 0.123456, 7: -2.0})
    assert TermTable.from_dict(table.to_dict()).log_odds == {5: 0.1235, 7: -2.0}
