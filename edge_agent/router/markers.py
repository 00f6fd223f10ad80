"""The router's hand-written word lists (``lexicon/*.toml``) and how they are matched.

Each marker family is one TOML file, named after the family, with up to four keys:

- ``words``: whole words, one per line of a multi-line string (a set lookup against the
  text's words);
- ``stems``: substrings that may start or sit inside a word (``invest`` for investing,
  investor);
- ``phrases``: substrings, spaces and punctuation included (phrases, symbols, and words of
  scripts written without spaces, which have no word boundaries);
- ``shapes``: regular expressions for what no list can say (``x^2``, ``def f(``), each
  with ``requires``, substrings one of which it cannot match without, and optional
  ``flags`` (``I``, ``M``).

The lists are data, but what the shipped weights score depends on them: the trees were
fitted on features these lists produced. So a lexicon has a hash (``Lexicon.sha256``), the
training script stores it with the weights, and ``model.load_model`` refuses weights
trained on other lists. The hash covers what matching sees (each family's words, stems,
phrases as sets, and its shapes), not the files' bytes: comments, order and line endings
may change freely.

Lists are read once, when the router's weights are loaded or the first request's features
are extracted, never per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import Field, dataclass, field, fields
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["Lexicon", "Markers", "Shape", "bundled_lexicon", "load_lexicon"]

LEXICON_DIR = "lexicon"
"""The folder of ``*.toml`` word lists inside the ``edge_agent.router`` package."""

_KEYS = frozenset({"words", "stems", "phrases", "shapes"})
_SHAPE_KEYS = frozenset({"pattern", "requires", "flags"})


@dataclass(frozen=True)
class Shape:
    """A regular expression, with the substrings one of which it cannot match without.
    Those are looked for first, in the lower-cased text: a substring search is a fast
    scan in C, while ``re`` tries every alternative at every position, so most prompts
    never run the expression."""

    pattern: re.Pattern[str]
    requires: tuple[str, ...] = ()

    def found(self, low: str, text: str) -> bool:
        if self.requires and not any(r in low for r in self.requires):
            return False
        return self.pattern.search(text) is not None


@dataclass(frozen=True)
class Markers:
    """One family of signs in lower-cased text: whole words (a set lookup), word stems,
    substrings (phrases, CJK, which has no word boundaries) and a few shapes.

    Word sets instead of one big alternation: Python's ``re`` tries every alternative at
    every position, which cost ~30 ns per character per word (milliseconds per prompt).
    """

    words: frozenset[str] = frozenset()
    stems: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    shapes: tuple[Shape, ...] = ()
    _substrings: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _ascii_substrings: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """Phrases and stems, and the ASCII ones alone: in an all-ASCII text (most English
    prompts, and ``isascii`` costs nothing) a CJK phrase cannot occur, so it is not
    searched for."""

    def __post_init__(self) -> None:
        substrings = self.phrases + self.stems
        object.__setattr__(self, "_substrings", substrings)
        object.__setattr__(self, "_ascii_substrings", tuple(s for s in substrings if s.isascii()))

    def found(self, words: frozenset[str], low: str, text: str) -> bool:
        """Whether a sign is in the text: ``words`` its words, ``low`` it lower-cased,
        ``text`` as the shapes want it (original case, or a part of ``low``)."""
        if not self.words.isdisjoint(words):
            return True
        substrings = self._ascii_substrings if low.isascii() else self._substrings
        if any(s in low for s in substrings):
            return True
        return any(shape.found(low, text) for shape in self.shapes)

    def canonical(self) -> dict[str, Any]:
        """What matching sees, in a stable order (the input of the lexicon's hash)."""
        return {
            "words": sorted(self.words),
            "stems": sorted(set(self.stems)),
            "phrases": sorted(set(self.phrases)),
            "shapes": sorted(
                [s.pattern.pattern, sorted(s.requires), _flag_letters(s.pattern.flags)]
                for s in self.shapes
            ),
        }


@dataclass(frozen=True)
class Lexicon:
    """Every marker family the features use; each field is read from ``<field>.toml``."""

    code: Markers
    math: Markers
    proof: Markers
    reasoning: Markers
    depth: Markers
    writing: Markers
    structure: Markers
    planning: Markers
    expert: Markers
    easy: Markers
    logic: Markers
    follow_up: Markers
    trivial_ask: Markers
    sha256: str = field(init=False, compare=False)
    """Hex SHA-256 of the families' canonical form; the weights file records it."""

    def __post_init__(self) -> None:
        canonical = {f.name: getattr(self, f.name).canonical() for f in _families()}
        blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        object.__setattr__(self, "sha256", hashlib.sha256(blob.encode()).hexdigest())


def _families() -> list[Field[Any]]:
    return [f for f in fields(Lexicon) if f.init]


def load_lexicon(directory: Traversable) -> Lexicon:
    """The lexicon whose families are the ``*.toml`` files in ``directory``; a missing
    file, an unknown key or a bad pattern raises ``ValueError`` naming the file."""
    families: dict[str, Markers] = {}
    for family in _families():
        name = f"{family.name}.toml"
        try:
            data = tomllib.loads(directory.joinpath(name).read_text(encoding="utf-8"))
            families[family.name] = _markers(data)
        except (OSError, tomllib.TOMLDecodeError, re.error, TypeError, ValueError) as exc:
            raise ValueError(f"router word list {name}: {exc}") from exc
    return Lexicon(**families)


@cache
def bundled_lexicon() -> Lexicon:
    """The word lists shipped in the package (read once, then shared: it is immutable)."""
    return load_lexicon(resources.files("edge_agent.router").joinpath(LEXICON_DIR))


def _markers(data: dict[str, Any]) -> Markers:
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    return Markers(
        words=frozenset(_text(data.get("words", "")).split()),
        stems=_strings(data.get("stems", []), "stems"),
        phrases=_strings(data.get("phrases", []), "phrases"),
        shapes=tuple(_shape(s) for s in data.get("shapes", [])),
    )


def _shape(data: dict[str, Any]) -> Shape:
    unknown = set(data) - _SHAPE_KEYS
    if unknown:
        raise ValueError(f"unknown shape keys {sorted(unknown)} (allowed: {sorted(_SHAPE_KEYS)})")
    flags = re.NOFLAG
    for letter in _text(data.get("flags", "")):
        if letter not in "IM":
            raise ValueError(f"shape flag {letter!r} is not I or M")
        flags |= re.RegexFlag[letter]
    pattern = re.compile(_text(data["pattern"]), flags)
    return Shape(pattern, _strings(data.get("requires", []), "requires"))


def _flag_letters(flags: int) -> str:
    return "".join(letter for letter in "IM" if flags & re.RegexFlag[letter])


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"{key} must be a list of non-empty strings")
    return tuple(value)
