"""What the router knows about a request: a few cheap numbers and flags, no model.

Extraction is pure and fast (a handful of regular expressions over the text) because it
runs on every request, on a Raspberry Pi, before the first token. The flags are
deliberately coarse: they only have to tell "the 135M local model will do" from "send it
to the big model". A later learned router will consume the same ``PromptFeatures``, so
everything it might want is a field here rather than a private detail of the policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.messages import GenerateRequest

__all__ = [
    "CHARS_PER_TOKEN",
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

_CODE = re.compile(
    r"```"  # a fenced block
    r"|^\s*(?:def|class|async\s+def)\s+\w+"  # Python
    r"|\bfunction\s*\w*\s*\("  # JavaScript
    r"|\b(?:fn|func)\s+\w+\s*\("  # Rust, Go
    r"|#include\s*[<\"]"  # C, C++
    r"|(?-i:\bSELECT\b[\s\S]{1,500}?\bFROM\b)"  # SQL; upper case only ("select X from" is English)
    r"|\b(?:public|private|static)\s+(?:static\s+)?(?:void|int|class)\b"  # Java, C#
    r"|^\s*(?:import|from)\s+[\w.]+(?:\s+import\b|\s*$)"  # imports
    r"|\bwrite\s+(?:a|an|the|me\s+a)\s+(?:\w+\s+)?(?:function|program|script|method|query|class)\b"
    r"|=>|\bconsole\.log\b|\bprintf\s*\(|\bstd::"
    r"|\bc\+\+|\b(?:python|javascript|typescript|golang|sql|regex|bash|shell\s+script)\b"
    r"|\b(?:source\s+code|c[oó]digo|refactor|debug|compile|stack\s*trace|Quellcode)\b",
    re.IGNORECASE | re.MULTILINE,
)

_MATH = re.compile(
    r"\\(?:frac|int|sum|sqrt|prod|lim|begin\{(?:equation|align))"  # LaTeX
    r"|\$[^$\n]+\$"  # inline LaTeX
    r"|\d\s*[+*\u00d7\u00f7^]\s*\(?\d|\d\s+[-/]\s+\(?\d"  # 12 * 7, 2^10, 9 - 4 (not 2024-05-01)
    r"|\b\d*[a-z]\s*(?:\^|\*\*)\s*\d"  # x^2, 3x**2
    r"|\b[a-z]\s*[=<>≤≥]\s*-?\d"  # x = 3, n > 0
    r"|[∫∑∏√∞≤≥≠]"
    r"|\b(?:solve|integral|integrate|derivative|differentiate|equation|prove|proof|theorem"
    r"|lemma|matrix|eigen\w*|probability|factori[sz]e|polynomial|logarithm"  # English
    r"|resuelve|resolver|ecuaci[oó]n|derivada|demuestra|demostrar"  # Spanish
    r"|r[ée]sou(?:s|dre)|[ée]quation|d[ée]riv[ée]e|d[ée]montre[rz]?|int[ée]grale"  # French
    r"|löse|Gleichung|Ableitung|beweise)\b",
    re.IGNORECASE,
)

_REASONING = re.compile(
    r"\bstep[- ]by[- ]step\b|\bexplain\s+(?:why|how)\b|\bwhy\s+(?:does|do|is|are|did|would)\b"
    r"|\bcompare\b|\bcontrast\b|\banaly[sz]e\b|\banalysis\b|\bpros\s+and\s+cons\b"
    r"|\btrade-?offs?\b|\bevaluate\b|\bjustify\b|\breason(?:ing)?\s+(?:about|through)\b"
    r"|\bpaso\s+a\s+paso\b|\bexplica\s+(?:por\s+qu[ée]|c[oó]mo)\b|\bcompara\b|\banaliza\b"  # es
    r"|\b[ée]tape\s+par\s+[ée]tape\b|\bexplique[rz]?\s+pourquoi\b|\bcompare[rz]\b"  # fr
    r"|\banalyse[rz]\b"
    r"|\bSchritt\s+f[üu]r\s+Schritt\b|\berkl[äa]re?\s+warum\b|\bvergleiche?\b"  # de
    r"|\banalysiere\b",
    re.IGNORECASE,
)

_ENUMERATED = re.compile(r"^\s*(?:\d+[.)]|[a-z][.)]|[-*•])\s+\S", re.MULTILINE | re.IGNORECASE)


MULTI_PART_QUESTIONS = 3
"""Questions (or enumerated items) in the last user message that make it a multi-part
request; two is common small talk ("Hi! How are you? What's new?"), three rarely is."""

_FLAG_ROLES = frozenset({"user", "assistant", "tool"})


@dataclass(frozen=True)
class PromptFeatures:
    """The router's view of one request; every field is cheap to compute and to log."""

    prompt_tokens: int
    """Estimated prompt length in tokens (characters / ``CHARS_PER_TOKEN`` plus template
    overhead per turn): an estimate, never a tokeniser count."""
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


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the characters-per-token rule (rounded up)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def extract_features(request: GenerateRequest) -> PromptFeatures:
    """Features of ``request``.

    Length counts every message. Content flags skip system and developer messages:
    boilerplate like "think step by step" in an app's system prompt would otherwise send
    all of its requests to the cloud. Earlier user and assistant turns do count (code
    written two turns ago makes "now make it faster" a code request); the question count
    looks at the last user message only, since it is about what is being asked now.
    """
    if request.messages is not None:
        turns = len(request.messages)
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        prompt_tokens += TOKENS_PER_TURN * turns
        text = "\n".join(m.content for m in request.messages if m.role in _FLAG_ROLES)
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    else:
        text = last_user = request.prompt or ""
        turns = 1
        prompt_tokens = estimate_tokens(text)
    questions = last_user.count("?") + len(_ENUMERATED.findall(last_user))
    return PromptFeatures(
        prompt_tokens=prompt_tokens,
        turns=turns,
        max_tokens=request.params.max_tokens,
        questions=questions,
        has_code=_CODE.search(text) is not None,
        has_math=_MATH.search(text) is not None,
        has_reasoning=_REASONING.search(text) is not None or questions >= MULTI_PART_QUESTIONS,
    )
