"""What the router knows about a request: a few cheap numbers and flags, no model.

Extraction is pure and fast (a handful of regular expressions over the text) because it
runs on every request, on a Raspberry Pi, before the first token. The flags are
deliberately coarse: they only have to tell "the 135M local model will do" from "send it
to the big model". The learned router (``edge_agent.router.model``) consumes the same
``PromptFeatures`` through ``feature_vector``, so everything it might want is a field
here rather than a private detail of the policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.router.terms import TermTable, term_buckets
from shared.messages import ChatMessage, GenerateRequest

__all__ = [
    "CHARS_PER_TOKEN",
    "FEATURE_NAMES",
    "FOCUS_CHARS",
    "MULTI_PART_QUESTIONS",
    "PromptFeatures",
    "estimate_tokens",
    "extract_features",
    "feature_vector",
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


@dataclass(frozen=True)
class _Shape:
    """A regular expression for what no word list can say (``x^2``, ``def f(``), with the
    substrings one of which it cannot match without. Those are looked for first, in the
    lower-cased text: a substring search is a fast scan in C, while ``re`` tries every
    alternative at every position, so most prompts never run the expression."""

    pattern: re.Pattern[str]
    requires: tuple[str, ...] = ()

    def found(self, low: str, text: str) -> bool:
        if self.requires and not any(r in low for r in self.requires):
            return False
        return self.pattern.search(text) is not None


def _shape(pattern: str, *requires: str, flags: int = 0) -> _Shape:
    return _Shape(re.compile(pattern, flags), requires)


@dataclass(frozen=True)
class _Markers:
    """One family of signs in lower-cased text: whole words (a set lookup), word stems,
    substrings (phrases, CJK, which has no word boundaries) and a few shapes.

    Word sets instead of one big alternation: Python's ``re`` tries every alternative at
    every position, which cost ~30 ns per character per word (milliseconds per prompt).
    """

    words: frozenset[str] = frozenset()
    stems: tuple[str, ...] = ()
    """Substrings that may start or sit inside a word (``invest`` for investing, investor)."""
    phrases: tuple[str, ...] = ()
    shapes: tuple[_Shape, ...] = ()
    _substrings: tuple[str, ...] = field(init=False, repr=False)
    _ascii_substrings: tuple[str, ...] = field(init=False, repr=False)
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


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CODE = _Markers(
    words=_w(
        "python javascript typescript golang sql regex bash refactor debug compile rust go java"
        " kotlin swift react jsx node docker kubernetes pytest api sdk cli typeerror exception"
        " segfault implement algorithm código quellcode c++ aiohttp asyncio numpy pandas"
    ),
    phrases=(
        "```",
        "#include",
        "=>",
        "console.log",
        "printf(",
        "std::",
        "c++",
        "source code",
        "stack trace",
        "stacktrace",
        "github actions",
        "unit test",
        "json schema",
        "null pointer",
        "shell script",
        "用go",
        "用python",
        "用java",
        "代码",
        "コード",
    ),
    shapes=(
        _shape(r"^\s*(?:def|class|async\s+def)\s+\w+", "def", "class", flags=re.M),  # Python
        _shape(r"\bfunction\s*\w*\s*\(", "function"),  # JavaScript
        _shape(r"\b(?:fn|func)\s+\w+\s*\(", "fn", "func"),  # Rust, Go
        # SQL; upper case only ("select X from" is English)
        _shape(r"\bSELECT\b[\s\S]{1,500}?\bFROM\b", "select"),
        _shape(  # Java, C#
            r"\b(?:public|private|static)\s+(?:static\s+)?(?:void|int|class)\b",
            "public",
            "private",
            "static",
        ),
        _shape(r"^\s*(?:import|from)\s+[\w.]+(?:\s+import\b|\s*$)", "import", "from", flags=re.M),
        _shape(
            r"\bwrite\s+(?:a|an|the|me\s+a)\s+(?:\w+\s+)?"
            r"(?:function|program|script|method|query|class)\b",
            "write",
            flags=re.I,
        ),
        _shape(r"\w\(\)", "()"),
        _shape(r"O\(\w+\)", "o("),
    ),
)

_MATH = _Markers(
    words=_w(
        "solve integral integrate derivative differentiate equation prove proof theorem lemma"
        " matrix probability polynomial logarithm resuelve resolver ecuación ecuacion derivada"
        " demuestra demostrar résous resous résoudre resoudre équation equation dérivée derivee"
        " démontrer démontrez intégrale integrale löse gleichung ableitung beweise"
    ),
    stems=("eigen", "factoris", "factoriz"),
    phrases=(
        "证明",
        "无理数",
        "方程",
        "概率",
        "解题",
        "証明",
        "∫",
        "∑",
        "∏",
        "√",
        "∞",
        "≤",
        "≥",
        "≠",
    ),
    shapes=(
        _shape(r"\\(?:frac|int|sum|sqrt|prod|lim|begin\{(?:equation|align))", "\\"),  # LaTeX
        _shape(r"\$[^$\n]+\$", "$"),  # inline LaTeX
        _shape(r"\d\s*[+*\u00d7\u00f7^]\s*\(?\d", *"+*\u00d7\u00f7^"),  # 12 * 7, 2^10
        _shape(r"\d\s+[-/]\s+\(?\d", "-", "/"),  # 9 - 4 (not 2024-05-01)
        _shape(r"\b\d*[a-z]\s*(?:\^|\*\*)\s*\d", "^", "**", flags=re.I),  # x^2, 3x**2
        _shape(r"\b[a-z]\s*[=<>]\s*-?\d", "=", "<", ">", flags=re.I),  # x = 3, n > 0
    ),
)

_PROOF = _Markers(
    words=_w(
        "prove proof rigorous rigorously induction irrational divisible prime primes infinitely"
        " cyclic axiom axioms cryptarithm riddle puzzle knight knights knave knaves counterfeit"
        " beweise demuestra"
    ),
    stems=("démontr", "demontr"),
    phrases=("show that", "day of the week", "证明", "无理数", "質数", "素数"),
    shapes=(_shape(r"\bhow\s+many\s+\w'?s\s+(?:are\s+)?in\b", "how many"),),
)
"""Short prompts that look easy and are not: proofs, number theory, logic puzzles,
counting letters (sub-word tokens make that hard for any model, worse for a small one)."""

_REASONING = _Markers(
    words=_w(
        "compare contrast analyze analyse analysis evaluate justify compara analiza"
        " comparez comparer analysez analyser vergleiche vergleich analysiere"
    ),
    stems=("trade-off", "tradeoff"),
    phrases=(
        "step by step",
        "step-by-step",
        "explain why",
        "explain how",
        "pros and cons",
        "reason about",
        "reason through",
        "reasoning about",
        "paso a paso",
        "explica por qu",
        "explica có",
        "explica co",
        "étape par étape",
        "etape par etape",
        "explique pourquoi",
        "expliquez pourquoi",
        "schritt für schritt",
        "schritt fur schritt",
        "erkläre warum",
        "erklär warum",
    ),
    shapes=(_shape(r"\bwhy\s+(?:does|do|is|are|did|would)\b", "why"),),
)

_DEPTH = _Markers(
    words=_w(
        "explain nuanced why strategy counterpoint counterpoints theme themes argument arguments"
        " explica explique expliquez erkläre erklären warum pourquoi"
    ),
    stems=("recommend",),
    phrases=(
        "show work",
        "show your work",
        "walk me through",
        "think it through",
        "be specific",
        "be honest",
        "be rigorous",
        "with specifics",
        "in detail",
        "what's your take",
        "whats your take",
        "how should i",
        "how do i",
        "how can i",
        "how should we",
        "how do we",
        "what should",
        "suggest concrete",
        "suggest improvements",
        "check them",
        "为什么",
        "说明",
        "理由",
        "过程",
        "分析",
        "なぜ",
        "説明",
    ),
)
"""Asks for an explanation, an argument or advice, not a fact."""

_WRITING = _Markers(
    words=_w(
        "essay story poem article speech report proposal eulogy newsletter toast script chapter"
        " lyrics detailed timeline escribe escriba übersetze ubersetze übersetzen"
    ),
    stems=("ausführlich", "ausfuhrlich", "schreib", "rédig", "redig", "traduc"),
    phrases=(
        "blog post",
        "cover letter",
        "press release",
        "write a ",
        "write an ",
        "write the ",
        "write my ",
        "write me a",
        "draft a ",
        "draft an ",
        "draft the ",
        "draft my ",
        "compose a ",
        "translate this",
        "translate the following",
        "translate these",
        "translate it",
        "day-by-day",
        "day by day",
        "week-by-week",
        "week by week",
        "写一篇",
        "写一封",
        "议论文",
        "作文",
        "文章",
        "翻译",
        "翻訳",
        "書いて",
    ),
    shapes=(
        _shape(r"\b\d{3,5}[- ]?words?\b", "word"),
        _shape(r"\b(?:two|three|four|2|3|4)[- ]pages?\b", "page"),
        _shape(r"\d{3,5}\s*字", "字"),
        _shape(r"\b\d{3,5}\s*(?:wörter|mots|palabras|語)", "wörter", "mots", "palabras", "語"),
    ),
)
"""Long-form output: essays, stories, letters, translations of whole texts, plans."""

_STRUCTURE = _Markers(
    words=_w(
        "json csv yaml xml table spreadsheet field fields schema array null bullet bullets"
        " extract group rank summarize summarise quote tabelle felder wandle"
    ),
    stems=("résum",),
    phrases=(
        "pull out",
        "pull the",
        "convert this",
        "turn this into",
        "action item",
        "字段",
        "整理",
        "总结",
        "要点",
        "表格",
    ),
)
"""Structured or exhaustive transformations of a given text (extraction, summaries)."""

_PLANNING = _Markers(
    words=_w("plan planning schedule itinerary budget timeline roadmap planung"),
    stems=("planifi", "planea", "révision", "revision"),
    phrases=("per day", "per week", "per month", "规划", "计划", "预算", "日程"),
    shapes=(
        _shape(r"\b\d+[- ](?:day|week|month)s?\b", "day", "week", "month"),
        _shape(r"\bmax(?:imum)?\s+\d", "max"),
    ),
)

_EXPERT = _Markers(
    words=_w(
        "law legal court contract clause lawsuit tenant landlord fiduciary statute tax taxes"
        " ira roth mortgage loan interest stock stocks vat iva invoice dose dosage mg lab labs"
        " symptom symptoms clinical trial medication interaction interactions validity"
        " compliance impôt impôts modelo modelos"
    ),
    stems=("evict", "invest", "diagnos", "cardiolog", "statistic", "steuer", "médic", "factur"),
    phrases=(
        "401(k)",
        "index fund",
        "sample size",
        "soc 2",
        "soc2",
        "合同",
        "合法",
        "法律",
        "违约",
        "血糖",
        "药",
        "医生",
        "剂量",
        "肾",
        "保险",
        "税",
    ),
)
"""Domains where a wrong answer costs money or health: law, tax, medicine, finance."""

_EASY = _Markers(
    words=_w(
        "define rhyme rhymes synonym synonyms antonym antonyms spell spelling spelled typo typos"
        " sentiment shorten corrige formuliere dime"
    ),
    phrases=(
        "meaning of",
        "capital of",
        "how do you say",
        "translate '",
        'translate "',
        "translate “",
        "translate \u2018",
        "opposite of",
        "positive or negative",
        "more polite",
        "politely",
        "rewrite in",
        "passive voice",
        "suggest a name",
        "how many cm",
        "how many days",
        "how many minutes",
        "how many hours",
        "how many grams",
        "how many inches",
        "in celsius",
        "in fahrenheit",
        "to miles",
        "in miles",
        "to km",
        "是什么意思",
        "怎么说",
        "用英语",
        "起个名字",
        "说出",
        "改得",
        "正面还是负面",
        "几种",
        "いくつ",
        "何と言",
        "ポジティブ",
        "was ist",
        "wie viele",
        "que veut dire",
        "cuál es",
        "cual es",
        "qué puedo",
        "que puedo",
    ),
    shapes=(
        _shape(  # a greeting opens a line
            r"^\s*(?:hi|hello|hey|yo|good\s+(?:morning|evening|night)|thanks?|thank\s+you|bonjour"
            r"|salut|hola|¡hola|hallo|ciao|你好|こんにちは|谢谢)\b",
            flags=re.M,
        ),
        _shape(r"\bwhat\s+does\s+['\"“«]?[\w-]+['\"”»]?\s+mean\b", "mean"),
        _shape(r"\bwhat\s+is\s+(?:a|an)\s+\w+\??$", "what", flags=re.M),
        _shape(r"\bname\s+(?:\d|one|two|three|four)\b", "name"),
        _shape(r"\bconvert\s+\d", "convert"),
        _shape(
            r"\bin\s+(?:english|french|german|spanish|italian|japanese)\??$",
            *("english", "french", "german", "spanish", "italian", "japanese"),
            flags=re.M,
        ),
        _shape(
            r"\bgive\s+me\s+(?:a|an|one|\d)\s+(?:\w+\s+)?(?:idea|name|word|example|fruits?|pets?)\b",
            "give",
        ),
    ),
)
"""Tasks a 135M model handles: greetings, definitions, one-word translations, typo fixes,
sentiment of one sentence, tiny lists, unit conversions."""


_LOGIC = _Markers(
    words=_w(
        "if each every twice half halves remaining older younger heavier lighter faster"
        " slower taller shorter exactly minimum maximum least fewest odds chance trick"
        " whether overtake overtakes overtook pass passes passed siblings brothers sisters"
        " weighs weigh socks gloves coins prime primes digits sum product divided remainder"
        " wenn jede jeder falls chaque moitié moitie cada mitad si"
    ),
    phrases=(
        "how long",
        "how far",
        "how much",
        "how many",
        "more than",
        "less than",
        "fewer than",
        "at least",
        "at most",
        "is it possible",
        "what comes next",
        "next number",
        "which is bigger",
        "which is larger",
        "which weighs",
        "true or false",
        "如果",
        "每",
        "一半",
        "もし",
    ),
)
"""Word-problem and logic language ("if each...", "how many are left", "which is
heavier"): the shape of short questions that look like small talk and need reasoning."""

_FOLLOW_UP = _Markers(
    words=_w(
        "it its this that those these them why instead also again now same else then"
        " eso esto ça cela das dies"
    ),
    phrases=("what about", "and if", "how about", "what if", "the other", "the second"),
)
"""A last turn that points back at the conversation ("now do it in Rust", "why?"):
its difficulty is the earlier turns'."""

_TRIVIAL_ASK = _Markers(
    words=_w("just only simply merely"),
    phrases=(
        "tell me the name",
        "the name of",
        "what time",
        "what day",
        "which day",
        "what date",
        "who wrote",
        "who sent",
        "who signed",
        "which language",
        "what language",
        "yes or no",
        "one word",
        "don't need",
        "do not need",
        "no need to",
        "quick question",
        "simple question",
        "thanks",
        "thank you",
        "bye",
        "good night",
        "sounds good",
        "got it",
        "solo dime",
        "dis-moi juste",
        "只要告诉我",
        "就行",
        "だけ教えて",
    ),
)
"""The closing ask of a message is trivial ("just tell me what time the party starts",
"thanks, bye!"): a long pasted text or a hard earlier turn does not make it hard."""


FOCUS_CHARS = 200
""""Easy" markers are only looked for this close to either end of the last message:
they are about the one thing asked, and stray words deep in a long text mean nothing."""


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

    The first eight fields feed the hand-written baseline (``HeuristicRouter``); the rest
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
    other_script_share: float = 0.0
    """Share of Cyrillic, Arabic, Devanagari, Hangul and Thai characters (the small model
    is weakest in these scripts)."""


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``: one per CJK character, ``CHARS_PER_TOKEN`` characters per token
    for the rest (rounded up)."""
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // CHARS_PER_TOKEN)


def extract_features(request: GenerateRequest) -> PromptFeatures:
    """Features of ``request``.

    Length counts every message. Content flags skip system and developer messages:
    boilerplate like "think step by step" in an app's system prompt would otherwise send
    all of its requests to the cloud. Earlier user and assistant turns do count for the
    code flag (code written two turns ago makes "now make it faster" a code request); the
    other flags and the question count look at the last user message only, since they are
    about what is being asked now (an easy follow-up to a hard question is easy).
    """
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
        has_system = any(m.role in ("system", "developer") for m in messages)
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
        has_code=_CODE.found(all_words, all_low, text),
        has_math=_MATH.found(words, low, last),
        has_reasoning=_REASONING.found(words, low, low) or questions >= MULTI_PART_QUESTIONS,
        last_user_tokens=last_user_tokens,
        last_sentence_tokens=estimate_tokens(last_sentence),
        has_system=has_system,
        cjk_share=len(_CJK.findall(text)) / len(text) if text else 0.0,
        numbers=len(_NUMBER.findall(last)),
        proof=_PROOF.found(words, low, low),
        depth=_DEPTH.found(words, low, low),
        writing=_WRITING.found(words, low, low),
        structure=_STRUCTURE.found(words, low, low),
        planning=_PLANNING.found(words, low, low),
        expert=_EXPERT.found(words, low, low),
        easy=_EASY.found(words, low, _focus(low)),
        logic=_LOGIC.found(words, low, low),
        trivial_ask=_TRIVIAL_ASK.found(
            frozenset(_WORD.findall(tail_low := tail[-FOCUS_CHARS:].lower())), tail_low, tail_low
        ),
        history_hard=bool(history)
        and any(m.found(history_words, history_low, history_low) for m in _HARD_MARKERS),
        follow_up=turns > 1 and _FOLLOW_UP.found(words, low, low),
        previous_answer_tokens=_previous_answer_tokens(request),
        max_number_digits=max((len(n) for n in _DIGIT_RUN.findall(last)), default=0),
        other_script_share=len(_OTHER_SCRIPT.findall(text)) / len(text) if text else 0.0,
        terms=term_buckets(last_words, _focus(low), history_list),
    )


_HARD_MARKERS = (_MATH, _PROOF, _REASONING, _DEPTH, _WRITING, _STRUCTURE, _PLANNING, _EXPERT)
_DIGIT_RUN = re.compile(r"\d+(?![\d,.]*[- ]?(?:words?|pages?|mots|palabras|wörter|字|語))")
"""A number, unless it sizes a text ("1200-word essay" is long output, not arithmetic)."""
_OTHER_SCRIPT = re.compile(r"[\u0400-\u04ff\u0600-\u06ff\u0900-\u097f\uac00-\ud7af\u0e00-\u0e7f]")


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


def _previous_answer_tokens(request: GenerateRequest) -> int:
    if request.messages is None:
        return 0
    answer = next((m.content for m in reversed(request.messages) if m.role == "assistant"), "")
    return estimate_tokens(answer)


FEATURE_NAMES: tuple[str, ...] = (
    "log_prompt_tokens",
    "log_last_user_tokens",
    "log_last_sentence_tokens",
    "log_turns",
    "log_max_tokens",
    "questions",
    "numbers",
    "cjk_share",
    "has_system",
    "code",
    "math",
    "reasoning",
    "proof",
    "depth",
    "writing",
    "structure",
    "planning",
    "expert",
    "easy",
    "logic",
    "trivial_ask",
    "history_hard",
    "follow_up",
    "log_previous_answer_tokens",
    "max_number_digits",
    "other_script_share",
    "trivial_ask_x_log_length",
    "history_hard_x_follow_up",
    "term_evidence",
)
"""The learned model's inputs, in order; the weights file names them and loading checks
they match, so stale weights fail at start-up instead of scoring garbage."""


def feature_vector(features: PromptFeatures, terms: TermTable | None = None) -> tuple[float, ...]:
    """``features`` as numbers in ``FEATURE_NAMES`` order; ``term_evidence`` comes from
    ``terms`` (the model's table), 0 without one.

    Lengths go in as logarithms (a 4000-token prompt is not ten times "harder" than a
    400-token one) and counts are capped, so no single odd request dominates the score.
    """
    return (
        math.log1p(features.prompt_tokens),
        math.log1p(features.last_user_tokens),
        math.log1p(features.last_sentence_tokens),
        math.log1p(features.turns - 1),
        math.log1p(features.max_tokens or 0),
        float(min(features.questions, 5)),
        float(min(features.numbers, 8)),
        features.cjk_share,
        float(features.has_system),
        float(features.has_code),
        float(features.has_math),
        float(features.has_reasoning),
        float(features.proof),
        float(features.depth),
        float(features.writing),
        float(features.structure),
        float(features.planning),
        float(features.expert),
        float(features.easy),
        float(features.logic),
        float(features.trivial_ask),
        float(features.history_hard),
        float(features.follow_up),
        math.log1p(features.previous_answer_tokens),
        float(min(features.max_number_digits, 6)),
        features.other_script_share,
        # Interactions a linear model cannot form itself: a long text with a trivial ask
        # is easy (length alone says the opposite); a pointing follow-up in a hard
        # conversation is hard (either alone says little).
        features.trivial_ask * math.log1p(features.last_user_tokens),
        float(features.history_hard and features.follow_up),
        terms.evidence(features.terms) if terms is not None else 0.0,
    )
