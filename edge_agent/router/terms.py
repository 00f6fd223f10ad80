"""Word evidence for the router: which words have gone with ``cloud`` prompts, and which
with ``local`` ones, in the labelled data.

The marker families (``lexicon/*.toml``) are written by hand and see only what their
authors thought of. This is the learned complement: every prompt becomes a set of hashed
terms (words and word pairs of the last user message, single words of earlier turns,
character pairs for scripts without spaces), and a naive-Bayes table of per-term log-odds
turns that set into one number, ``term_evidence``, which the trees split on and the
logistic model weighs like any other feature. One number rather than thousands of
weights: a few hundred labelled prompts support a log-odds table (counting), not a
high-dimensional fit, and the decision stays explainable. The table ships in the weights
file; the lab fits it (``router_lab.terms``).

Hashing (CRC-32, stable across processes, unlike ``hash``) keeps the table a plain
``{bucket: log_odds}`` map with no vocabulary to ship or to keep in step.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["BUCKETS", "TermTable", "term_buckets"]

BUCKETS = 1 << 16
"""Terms are hashed into this many buckets; the table maps a bucket to its log-odds."""

_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")


_USER = zlib.crc32(b"u:")
_HISTORY = zlib.crc32(b"h:")
_MASK = BUCKETS - 1


def term_buckets(words: Sequence[str], last: str, history_words: Iterable[str]) -> frozenset[int]:
    """Hashed terms of a request: ``words`` are the words of the last user message in
    order (``features`` has split them already; numbers are left out), ``last`` the
    start and end of that message (lower-cased) for its unspaced scripts, ``history_words``
    the words of the earlier turns.

    Character pairs come from the message's ends only (``features._focus``): the ask
    sits there, and every pair is a string to build and hash, so a pasted Chinese
    document would otherwise cost ~900 terms (a quarter of a millisecond) to say little.

    A term's bucket is the CRC-32 of ``"u:word"``, ``"u:word next"``, ``"u:" + two CJK
    characters`` or ``"h:word"`` in UTF-8. It runs on every request, so the strings are
    never built: CRC-32 continues from a prefix's value (``crc32(b, crc32(a)) ==
    crc32(a + b)``), each word is encoded once, and a pair continues from its first word.
    """
    buckets: set[int] = set()
    previous = -1
    for word in words:
        encoded = word.encode()
        crc = zlib.crc32(encoded, _USER)
        buckets.add(crc & _MASK)
        if previous >= 0:
            buckets.add(zlib.crc32(b" " + encoded, previous) & _MASK)
        previous = crc
    for run in _UNSPACED.findall(last):
        # Every character of these scripts takes three bytes in UTF-8, so a pair of
        # characters is a six-byte slice (a lone character, three).
        encoded = run.encode()
        buckets.update(
            zlib.crc32(encoded[i : i + 6], _USER) & _MASK
            for i in range(0, max(3, len(encoded) - 3), 3)
        )
    buckets.update(zlib.crc32(w.encode(), _HISTORY) & _MASK for w in set(history_words))
    return frozenset(buckets)


@dataclass(frozen=True)
class TermTable:
    """Per-term log-odds of ``cloud`` against ``local`` (smoothed document frequencies)."""

    log_odds: Mapping[int, float]

    def evidence(self, terms: Iterable[int]) -> float:
        """Mean log-odds of the known terms; 0 when none is known."""
        known = [self.log_odds[b] for b in terms if b in self.log_odds]
        return math.fsum(known) / len(known) if known else 0.0

    def to_dict(self) -> dict[str, float]:
        return {str(b): round(v, 4) for b, v in sorted(self.log_odds.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> TermTable:
        return cls({int(b): float(v) for b, v in data.items()})
