"""What the router knows about a request: a few cheap numbers and flags, no model.

Extraction is pure and fast (set lookups, substring searches and a few regular
expressions over the text) because it runs on every request, on a Raspberry Pi, before
the first token. The flags are deliberately coarse: they only have to tell "the 135M
local model will do" from "send it to the big model". Their word lists are data
(``lexicon/*.toml``, matched by ``markers``); the learned model reads ``PromptFeatures``
as numbers through the table in ``vector``, so everything it might want is a field here
rather than a private detail of the policy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.router.history import SYSTEM_ROLES
from edge_agent.router.markers import Lexicon, Markers, bundled_lexicon
from edge_agent.router.terms import term_buckets
from shared.messages import ChatMessage, GenerateRequest

__all__ = [
    "CHARS_PER_TOKEN",
    "FOCUS_CHARS",
    "MULTI_PART_QUESTIONS",
    "PromptFeatures",
    "estimate_tokens",
    "extract_features",
]

CHARS_PER_TOKEN = 4
"""Rule of thumb for English BPE vocabularies. Tokenising for real would need the model's
vocabulary (the cloud model's is not even here), and the router only compares against
coarse thresholds, so an estimate within ~30 % is enough."""

TOKENS_PER_TURN = 4
"""Chat templates wrap each message in role markers; about this many tokens each."""

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")
"""Kana, CJK ideographs, Hangul, full-width forms: about one token per character each, so
the four-characters-per-token rule would undercount a Chinese prompt fourfold."""

SCAN_HEAD_CHARS = 600
SCAN_TAIL_CHARS = 300
"""Content markers are looked for in a message's first and last characters only: the
instruction sits at the start or the end of a prompt, around a pasted document that
says little about how hard the ask is. The cap keeps extraction under a millisecond
whatever the prompt's size."""

_WORD = re.compile(r"[^\W\d_]+(?:'[a-z]+)?")
"""A word: letters, and an English contraction's tail. Numbers are not words here; they
have their own features (``numbers``, ``max_number_digits``)."""


FOCUS_CHARS = 200
"""The "easy" shapes are only looked for this close to either end of the last message
(they are about the one thing asked, and a stray line deep in a long text means nothing),
and the trivial-ask markers only in its last this-many characters. Word terms of
unspaced scripts come from the same ends (``terms.term_buckets``)."""


def _focus(low: str) -> str:
    if len(low) <= 2 * FOCUS_CHARS:
        return low
    return low[:FOCUS_CHARS] + "\n" + low[-FOCUS_CHARS:]


def _window(text: str) -> str:
    """The part of ``text`` content markers are looked for in (see ``SCAN_HEAD_CHARS``)."""
    if len(text) <= SCAN_HEAD_CHARS + SCAN_TAIL_CHARS:
        return text
    return text[:SCAN_HEAD_CHARS] + "\n" + text[-SCAN_TAIL_CHARS:]


_SENTENCE_END = re.compile("(?<=[.!?\u3002\uff01\uff1f])\\s+|\n+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ENUMERATED = re.compile(r"^\s*(?:\d+[.)]|[a-z][.)]|[-*•])\s+\S", re.MULTILINE | re.IGNORECASE)
_PARENTHESISED_ITEM = re.compile(r"\(\d\)")


MULTI_PART_QUESTIONS = 3
"""Questions (or enumerated items) in the last user message that make it a multi-part
request; two is common small talk ("Hi! How are you? What's new?"), three rarely is."""

_FLAG_ROLES = frozenset({"user", "assistant", "tool"})


@dataclass(frozen=True)
class PromptFeatures:
    """The router's view of one request; every field is cheap to compute and to log.

    The first seven fields feed the hand-written baseline (``HeuristicRouter``); the rest
    were added for the learned model and default to "absent" so that a caller building
    features by hand (tests, the baseline) need not name them.
    """

    prompt_tokens: int
    """Estimated prompt length in tokens (characters / ``CHARS_PER_TOKEN`` plus template
    overhead per turn, one token per CJK character): an estimate, never a tokeniser count."""
    turns: int
    """Messages in a chat (1 for a plain completion prompt)."""
    max_tokens: int | None
    """Output the client asked for at most; ``None`` = until the model stops."""
    questions: int
    """Question marks plus enumerated items in the last user message."""
    has_code: bool
    has_math: bool
    has_reasoning: bool
    """Explicit reasoning markers ("step by step", "compare", ...) or a multi-part question."""
    last_user_tokens: int = 0
    """Estimated tokens of the last user message alone (what is being asked now)."""
    last_sentence_tokens: int = 0
    """Estimated tokens of that message's last sentence: a long chatty preamble that ends
    in a short question is an easy prompt, a short instruction over a pasted document not."""
    has_system: bool = False
    cjk_share: float = 0.0
    """Share of CJK characters in the scanned text (a language signal)."""
    numbers: int = 0
    """Numbers in the last user message (word problems carry many)."""
    proof: bool = False
    depth: bool = False
    writing: bool = False
    structure: bool = False
    planning: bool = False
    expert: bool = False
    easy: bool = False
    logic: bool = False
    trivial_ask: bool = False
    """The last sentence of the last user message asks for something trivial."""
    history_hard: bool = False
    """An earlier turn (user or assistant) carries a hard-content flag: a follow-up in a
    hard conversation inherits its difficulty."""
    follow_up: bool = False
    """The last user turn of a conversation points back at what came before."""
    previous_answer_tokens: int = 0
    """Estimated tokens of the last assistant turn: long answers mean a demanding topic."""
    max_number_digits: int = 0
    """Digits of the longest number in the last user message (391 is prime? 17 x 23?)."""
    terms: frozenset[int] = frozenset()
    """Hashed words of the request (``terms.term_buckets``), for the learned word evidence."""
    structured: bool = False
    """The answer is constrained to JSON (a schema, ``json_object`` mode or a tool call):
    the structured-output policy's signal (``structured.py``), not a model feature."""
    other_script_share: float = 0.0
    """Share of Cyrillic, Arabic, Devanagari, Hangul and Thai characters (the small model
    is weakest in these scripts)."""
    elaboration: bool = False
    """The last user turn asks more about a substantive previous answer (see
    ``_elaboration``)."""
    ask_tokens: tuple[int, ...] | None = None
    """The routing text's token ids in the local model's vocabulary (``table.routing_text``),
    when the inference side supplied them: what the token-embedding head reads. Never
    extracted here (the router has no tokeniser); ``None`` = features only."""
    focus_tokens: tuple[int, ...] | None = None
    """The focus text's token ids (``table.focus_text``: the ask apart from pasted
    material), supplied with ``ask_tokens`` for a head that reads it."""
    focus_long: bool = False
    """The focus came from a long message (its first and last paragraphs)."""
    last_ask: PromptFeatures | None = None
    """For a conversation of more than one user turn, the features of its last ask alone
    (``history.last_ask_request``): the second look's first half takes the lower score.
    Never extracted here: ``table.with_head_tokens`` adds them, with their own token
    ids, where a second look may follow (nothing else reads them)."""


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``: one per CJK character, ``CHARS_PER_TOKEN`` characters per token
    for the rest (rounded up)."""
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // CHARS_PER_TOKEN)


def extract_features(request: GenerateRequest, lexicon: Lexicon | None = None) -> PromptFeatures:
    """Features of ``request``, its markers from ``lexicon`` (default: the bundled lists,
    the ones the bundled weights were trained on).

    Length counts every message. Content flags skip system and developer messages:
    boilerplate like "think step by step" in an app's system prompt would otherwise send
    all of its requests to the cloud. Earlier user and assistant turns do count for the
    code flag (code written two turns ago makes "now make it faster" a code request); the
    other flags and the question count look at the last user message only, since they are
    about what is being asked now (an easy follow-up to a hard question is easy).
    """
    lex = lexicon if lexicon is not None else bundled_lexicon()
    has_system = False
    messages: Sequence[ChatMessage] = request.messages or ()
    last_index = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    if request.messages is not None:
        turns = len(messages)
        tokens = [estimate_tokens(m.content) for m in messages]
        prompt_tokens = sum(tokens) + TOKENS_PER_TURN * turns
        text = "\n".join(_window(m.content) for m in messages if m.role in _FLAG_ROLES)
        last_user = messages[last_index].content if last_index >= 0 else ""
        last_user_tokens = tokens[last_index] if last_index >= 0 else 0
        has_system = any(m.role in SYSTEM_ROLES for m in messages)
    else:
        text = _window(request.prompt or "")
        last_user = request.prompt or ""
        turns = 1
        prompt_tokens = last_user_tokens = estimate_tokens(last_user)
    last = _window(last_user)
    low = last.lower()
    history = _history(messages, last_index)
    history_low = history.lower()
    history_list = _WORD.findall(history_low) if history else []
    history_words = frozenset(history_list)
    last_words = _WORD.findall(low)
    words = frozenset(last_words)
    all_low = text.lower()
    all_words = (
        words if all_low == low else _all_words(messages, last_index, words, history_words, all_low)
    )
    questions = (
        last.count("?")
        + last.count("\uff1f")  # full-width question mark
        + len(_ENUMERATED.findall(last))
        + len(_PARENTHESISED_ITEM.findall(last))
    )
    tail = last_user.strip()[-SCAN_TAIL_CHARS:]
    sentences = [s for s in _SENTENCE_END.split(tail) if s.strip()]
    last_sentence = sentences[-1] if sentences else ""
    return PromptFeatures(
        prompt_tokens=prompt_tokens,
        turns=turns,
        max_tokens=request.params.max_tokens,
        questions=questions,
        has_code=lex.code.found(all_words, all_low, text),
        has_math=lex.math.found(words, low, last),
        has_reasoning=lex.reasoning.found(words, low, low) or questions >= MULTI_PART_QUESTIONS,
        last_user_tokens=last_user_tokens,
        last_sentence_tokens=estimate_tokens(last_sentence),
        has_system=has_system,
        cjk_share=len(_CJK.findall(text)) / len(text) if text else 0.0,
        numbers=len(_NUMBER.findall(last)),
        proof=lex.proof.found(words, low, low),
        depth=lex.depth.found(words, low, low),
        writing=lex.writing.found(words, low, low),
        structure=lex.structure.found(words, low, low),
        planning=lex.planning.found(words, low, low),
        expert=lex.expert.found(words, low, low),
        easy=lex.easy.found(words, low, _focus(low)),
        logic=lex.logic.found(words, low, low),
        trivial_ask=lex.trivial_ask.found(
            frozenset(_WORD.findall(tail_low := tail[-FOCUS_CHARS:].lower())), tail_low, tail_low
        ),
        history_hard=bool(history)
        and any(m.found(history_words, history_low, history_low) for m in _hard(lex)),
        follow_up=turns > 1 and lex.follow_up.found(words, low, low),
        previous_answer_tokens=_previous_answer_tokens(request),
        elaboration=turns > 1 and _elaboration(request, last, lex.follow_up.found(words, low, low)),
        max_number_digits=max((len(n) for n in _DIGIT_RUN.findall(last)), default=0),
        other_script_share=len(_OTHER_SCRIPT.findall(text)) / len(text) if text else 0.0,
        structured=request.output is not None,
        terms=term_buckets(last_words, _focus(low), history_list),
    )


_DIGIT_RUN = re.compile(r"\d+(?![\d,.]*[- ]?(?:words?|pages?|mots|palabras|wörter|字|語))")
"""A number, unless it sizes a text ("1200-word essay" is long output, not arithmetic)."""
_OTHER_SCRIPT = re.compile(r"[\u0400-\u04ff\u0600-\u06ff\u0900-\u097f\uac00-\ud7af\u0e00-\u0e7f]")


def _hard(lex: Lexicon) -> tuple[Markers, ...]:
    """The families whose presence in an earlier turn makes ``history_hard``."""
    return (
        lex.math,
        lex.proof,
        lex.reasoning,
        lex.depth,
        lex.writing,
        lex.structure,
        lex.planning,
        lex.expert,
    )


def _all_words(
    messages: Sequence[ChatMessage],
    last_index: int,
    last: frozenset[str],
    history: frozenset[str],
    all_low: str,
) -> frozenset[str]:
    """The words of every user and assistant turn (the code flag looks at them all).
    Words never span the newline that joins the turns, so they are the words already
    split from the last user message and the history, plus those of any turn after the
    last user message (a tool result): each text is split once, not twice."""
    if last_index < 0:
        return frozenset(_WORD.findall(all_low))
    later = messages[last_index + 1 :]
    texts = [_window(m.content).lower() for m in later if m.role in _FLAG_ROLES]
    return last | history | frozenset(w for text in texts for w in _WORD.findall(text))


def _history(messages: Sequence[ChatMessage], last_index: int) -> str:
    """The user and assistant turns before the last user message (``last_index``),
    windowed. With no user message (-1) that is every turn but the last."""
    return "\n".join(_window(m.content) for m in messages[:last_index] if m.role in _FLAG_ROLES)


SUBSTANTIVE_ANSWER_TOKENS = 25
"""A previous answer this long (estimated tokens) explained something; shorter ones
("Blue!", "The capital of Italy is Rome.") did not."""

_QUESTION_MARKS = ("?", "\uff1f", "\u061f")
_CLOSING = re.compile(
    r"\b(?:thanks?|thank\s+you|thx|ty|bye|good\s*night|cheers|merci|danke|gracias|grazie|"
    r"obrigad[oa])\b|спасибо|谢谢|ありがとう|감사|고마워",
    re.IGNORECASE,
)
"""Thanks and goodbyes: "thanks, that fixed it!!" points back ("that") and asks nothing."""


def _elaboration(request: GenerateRequest, last: str, pointing: bool) -> bool:
    """The last ask continues a substantive answer: the previous assistant turn explained
    something (``SUBSTANTIVE_ANSWER_TOKENS``, or wrote code, and was not itself a
    question to the user)
    and the last user message asks again (a question, or a pointing follow-up that is
    not a thank-you or goodbye).

    A conversation's difficulty is its last ask with the history as context: "why
    though?" after an explanation asks for more of it; "and grass?" after "Blue!" does
    not, nor does "thanks!" after anything."""
    if request.messages is None:
        return False
    answer = next((m.content for m in reversed(request.messages) if m.role == "assistant"), "")
    answer = answer.strip()
    substantive = estimate_tokens(answer) >= SUBSTANTIVE_ANSWER_TOKENS or "```" in answer
    if not substantive or answer.endswith(_QUESTION_MARKS):
        return False
    if any(q in last for q in _QUESTION_MARKS):
        return True
    return pointing and _CLOSING.search(last) is None


def _previous_answer_tokens(request: GenerateRequest) -> int:
    if request.messages is None:
        return 0
    answer = next((m.content for m in reversed(request.messages) if m.role == "assistant"), "")
    return estimate_tokens(answer)
