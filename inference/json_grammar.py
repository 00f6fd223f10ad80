"""Holding a schema grammar's string characters to what a JSON string may hold raw.

llama-cpp-python's JSON-schema converter writes a string's characters as GBNF classes
that let a model write characters JSON forbids raw inside a string: its ``char`` rule
takes any character but ``"`` and ``\\`` (a newline or a tab too: llama-cpp-python
issue 1259), a ``pattern``'s ``.`` anything but CR and LF (a quote, which ends the
string early), and a pattern's own classes whatever they say (``[^@]`` takes a quote,
``[ -~]`` a quote and a backslash). Any of those and the answer does not parse, though
the grammar "held" it.

A pattern's literal characters are another matter: the converter writes ``a"b`` as the
grammar literal ``a"b``, raw, where the JSON text needs ``a\\"b``. ``refuse_raw_literals``
refuses such a pattern by name instead (the edge's 400), since a literal cannot be told
from the string's own quotes once in the grammar.

So ``harden`` rewrites the converter's output: the ``char`` and ``dot`` rules by name as
JSON's (escapes kept), and every other character class without the forbidden
characters: a negated class excludes them too, a positive one has them cut out of its
ranges. Classes outside strings (digits, hex) hold none, so they come out unchanged.
Working on classes rather than on the rules' exact text keeps this true if the converter
renames or rewrites a rule.
"""

from __future__ import annotations

import re

__all__ = ["FORBIDDEN", "harden", "refuse_raw_literals"]

FORBIDDEN: frozenset[int] = frozenset({*range(0x20), 0x22, 0x5C, 0x7F})
"""What a JSON string may not hold raw: control characters, ``"`` and ``\\``
(RFC 8259 forbids U+0000 to U+001F; DEL is left out too, as the stock JSON grammar does)."""

_EXCLUDE = r'"\\\x7F\x00-\x1F'
_RULES = {
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "dot": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
}
"""A string character, and a ``pattern``'s ``.``: one JSON string character, raw or
escaped (an escape is one character of the decoded string)."""

_RULE = re.compile(r"^([A-Za-z0-9-]+) ::= ")
_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "\\": 0x5C, '"': 0x22, "[": 0x5B, "]": 0x5D}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def harden(grammar: str) -> str:
    """``grammar`` (the converter's GBNF) with its strings held to JSON's characters."""
    lines = []
    for line in grammar.splitlines():
        rule = _RULE.match(line)
        # By name only where the rule is the converter's class (a property named "char"
        # gets a rule of its own name elsewhere: this holds if that ever changes).
        if rule is not None and rule.group(1) in _RULES and line[rule.end() :].startswith("[^"):
            lines.append(f"{rule.group(1)} ::= {_RULES[rule.group(1)]}")
        else:
            lines.append(_harden_classes(line))
    return "\n".join(lines) + ("\n" if grammar.endswith("\n") else "")


def _harden_classes(line: str) -> str:
    """``line`` with each character class outside a string literal hardened."""
    out: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            end = _literal_end(line, i)
            out.append(line[i:end])
            i = end
        elif c == "[":
            end, items, negated = _parse_class(line, i)
            if negated:
                out.append(f"{line[i : end - 1]}{_EXCLUDE}]")
            elif items is None or not any(_forbidden_in(lo, hi) for lo, hi in items):
                out.append(line[i:end])  # unreadable (the grammar parser judges it), or safe
            else:
                out.append(_positive(items))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _literal_end(line: str, start: int) -> int:
    i = start + 1
    while i < len(line) and line[i] != '"':
        i += 2 if line[i] == "\\" else 1
    return min(i + 1, len(line))


def _parse_class(line: str, start: int) -> tuple[int, list[tuple[int, int]] | None, bool]:
    """The end of the class at ``start``, its ranges (``None`` where unreadable) and
    whether it is negated."""
    i = start + 1
    negated = i < len(line) and line[i] == "^"
    i += negated
    items: list[tuple[int, int]] | None = []
    while i < len(line) and line[i] != "]":
        low, i = _char(line, i)
        high = low
        if i + 1 < len(line) and line[i] == "-" and line[i + 1] != "]":
            high, i = _char(line, i + 1)
        if low is None or high is None:
            items = None
        elif items is not None:
            items.append((low, high))
    if i >= len(line):
        return len(line), None, negated
    return i + 1, items, negated


def _char(line: str, i: int) -> tuple[int | None, int]:
    """The code point at ``i`` (``None`` for an escape GBNF does not know) and the
    index after it."""
    if line[i] != "\\":
        return ord(line[i]), i + 1
    if i + 1 >= len(line):
        return None, i + 1
    e = line[i + 1]
    if e in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[e], i + 2
    width = _HEX_ESCAPES.get(e)
    digits = line[i + 2 : i + 2 + width] if width else ""
    if width and len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
        return int(digits, 16), i + 2 + width
    return None, i + 2


def _forbidden_in(low: int, high: int) -> bool:
    return any(cp in FORBIDDEN for cp in range(low, min(high, 0x7F) + 1))


def _positive(items: list[tuple[int, int]]) -> str:
    """A positive class of ``items`` less ``FORBIDDEN``; ``ValueError`` for one that
    loses everything (a ``pattern`` that can only be met by characters a JSON string
    cannot hold raw: refused, rather than a grammar no answer can finish)."""
    kept: list[tuple[int, int]] = []
    for low, high in items:
        start = low
        for cp in range(low, min(high, 0x7F) + 1):
            if cp in FORBIDDEN:
                if start < cp:
                    kept.append((start, cp - 1))
                start = cp + 1
        if start <= high:
            kept.append((start, high))
    if not kept:
        raise ValueError(
            "a pattern's character class holds only characters a JSON string must escape"
        )
    return "[" + "".join(_emit(lo) + ("" if lo == hi else "-" + _emit(hi)) for lo, hi in kept) + "]"


def _emit(cp: int) -> str:
    if 0x20 < cp < 0x7F and chr(cp) not in '"\\[]-^':
        return chr(cp)
    if cp <= 0xFF:
        return f"\\x{cp:02X}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04X}"
    return f"\\U{cp:08X}"


_REGEX_CONTROL_ESCAPES = frozenset("tnrfvae0")


def refuse_raw_literals(schema: object, path: str = "") -> None:
    """``ValueError`` naming the first ``pattern`` in ``schema`` whose literal text (not
    its classes, which ``harden`` holds) needs a character JSON must escape: a quote, a
    backslash or a control character."""
    if isinstance(schema, dict):
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and _has_raw_literal(pattern):
            raise ValueError(
                f"{path + '.' if path else ''}pattern matches a quote, backslash or control "
                "character outside a character class, which a JSON string must escape; "
                "the grammar would write it raw"
            )
        for key, value in schema.items():
            refuse_raw_literals(value, f"{path}.{key}" if path else str(key))
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            refuse_raw_literals(value, f"{path}[{n}]")


def _has_raw_literal(pattern: str) -> bool:
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            if not in_class and (e in '"\\' or e in _REGEX_CONTROL_ESCAPES):
                return True
            if not in_class and e in "xu" and _char(pattern, i)[0] in FORBIDDEN:
                return True
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif not in_class and (c == '"' or ord(c) in FORBIDDEN):
            return True
        i += 1
    return False
