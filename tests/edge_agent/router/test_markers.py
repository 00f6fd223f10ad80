"""The word lists as data: they load, their hash follows their content (not their layout),
and a malformed file is refused by name."""

from __future__ import annotations

import shutil
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pytest

from edge_agent.router.features import extract_features
from edge_agent.router.markers import Lexicon, bundled_lexicon, load_lexicon
from shared.messages import ChatMessage, GenerateRequest

FAMILIES = [f.name for f in fields(Lexicon) if f.init]


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    """A copy of the bundled word lists to edit."""
    source = resources.files("edge_agent.router").joinpath("lexicon")
    for name in FAMILIES:
        shutil.copyfile(str(source.joinpath(f"{name}.toml")), tmp_path / f"{name}.toml")
    return tmp_path


def ask(text: str, lexicon: Lexicon | None = None) -> bool:
    """Whether ``text`` is an expert-domain request under ``lexicon``."""
    request = GenerateRequest(request_id="r", messages=(ChatMessage(role="user", content=text),))
    return extract_features(request, lexicon).expert


def test_every_family_loads_with_signs() -> None:
    lexicon = bundled_lexicon()
    for name in FAMILIES:
        markers = getattr(lexicon, name)
        assert markers.words or markers.phrases, name
    assert len(lexicon.sha256) == 64
    assert bundled_lexicon() is lexicon, "read once"


def test_the_hash_ignores_comments_order_and_line_endings(lists: Path) -> None:
    path = lists / "code.toml"
    text = path.read_text(encoding="utf-8")
    words_start = text.index("words = '''\n") + len("words = '''\n")
    words_end = text.index("'''", words_start)
    reordered = "\n".join(sorted(text[words_start:words_end].split())) + "\n"
    edited = "# a comment\n" + text[:words_start] + reordered + text[words_end:]
    path.write_bytes(edited.replace("\n", "\r\n").encode())
    assert load_lexicon(lists).sha256 == bundled_lexicon().sha256


def test_a_new_word_changes_the_hash_and_what_is_found(lists: Path) -> None:
    assert not ask("Can my neighbour's oak overhang my garden?")
    path = lists / "expert.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("words = '''\n", "words = '''\noverhang\n"),
        encoding="utf-8",
    )
    edited = load_lexicon(lists)
    assert edited.sha256 != bundled_lexicon().sha256
    assert ask("Can my neighbour's oak overhang my garden?", edited)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("phrase = ['typo']\n", "unknown keys"),
        ("words = ['a', 'list']\n", "expected a string"),
        ("phrases = ['']\n", "non-empty strings"),
        ("[[shapes]]\npattern = '(unclosed'\n", "missing \\)"),
        ("[[shapes]]\npattern = 'x'\nflags = 'S'\n", "not I or M"),
        ("[[shapes]]\npattern = 'x'\nrequire = ['x']\n", "unknown shape keys"),
        ("words = '''\n", "planning.toml: "),  # not TOML
    ],
)
def test_a_malformed_list_is_refused_naming_its_file(lists: Path, text: str, error: str) -> None:
    (lists / "planning.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"planning\.toml") as refused:
        load_lexicon(lists)
    assert refused.match(error)


def test_a_missing_list_is_refused(lists: Path) -> None:
    (lists / "easy.toml").unlink()
    with pytest.raises(ValueError, match=r"easy\.toml"):
        load_lexicon(lists)
