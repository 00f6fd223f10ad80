"""The schema grammar's strings held to JSON's characters, rule by rule: what the
converter's output becomes, and what is refused. The real model's side (an answer pushed
towards quotes and tabs still parses) is ``test_constraints``."""

from __future__ import annotations

import json

import pytest

from inference import InferenceError
from inference.constraints import grammar_for, schema_gbnf
from inference.json_grammar import harden, refuse_raw_literals
from shared.messages import OutputFormat

JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


def test_the_string_and_dot_rules_are_replaced_by_name_whatever_their_text() -> None:
    grammar = harden('char ::= [^"]\ndot ::= [^\\x0A]\nroot ::= "\\"" char* dot "\\""\n')
    assert grammar.splitlines() == [
        f"char ::= {JSON_CHAR}",
        f"dot ::= {JSON_CHAR}",
        'root ::= "\\"" char* dot "\\""',
    ]
    assert grammar.endswith("\n")
    own = 'char ::= "\\"" [^,]+ "\\"" space'  # a property's rule by that name: its class held
    assert harden(own) == r'char ::= "\"" [^,"\\\x7F\x00-\x1F]+ "\"" space'


def test_a_negated_class_excludes_what_json_must_escape() -> None:
    assert harden("a ::= [^,]+") == r'a ::= [^,"\\\x7F\x00-\x1F]+'
    assert harden(r"a ::= [^\n@]") == r'a ::= [^\n@"\\\x7F\x00-\x1F]'


def test_a_positive_class_loses_those_characters_from_its_ranges() -> None:
    assert harden("a ::= [ -~]") == r"a ::= [\x20-!#-\x5B\x5D-~]"
    assert harden(r"a ::= [\x00-\U0010FFFF]") == r"a ::= [\x20-!#-\x5B\x5D-~\x80-\U0010FFFF]"
    assert harden(r'a ::= [a-z\t"]') == "a ::= [a-z]"


def test_what_holds_none_of_them_is_left_alone() -> None:
    for line in ("a ::= [0-9] [0-9a-fA-F]{4}", 'a ::= "[^x]" [é-ü]', r"a ::= [\w.]+"):
        assert harden(line) == line  # literals are not classes; \w is for the parser


def test_a_pattern_that_only_json_escapes_could_meet_is_refused() -> None:
    with pytest.raises(ValueError, match="must escape"):
        harden(r'a ::= ["\\]')
    schema = {"type": "string", "pattern": "^[\\t\\n]+$"}
    with pytest.raises(InferenceError, match=r"cannot be enforced.*must escape"):
        grammar_for(OutputFormat(schema_text=json.dumps(schema)))


def test_the_converters_own_output_comes_out_held() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "code": {"type": "string", "pattern": "^[^,]+\\..$"},
            "id": {"type": "string", "format": "uuid"},
        },
    }
    rules = dict(line.split(" ::= ", 1) for line in schema_gbnf(json.dumps(schema)).splitlines())
    assert rules["char"] == rules["dot"] == JSON_CHAR
    assert r'[^,"\\\x7F\x00-\x1F]+' in rules["code"]
    assert "[0-9a-fA-F]" in rules["uuid"]


@pytest.mark.parametrize("pattern", ['^a"b$', r"^a\\b$", r"^a\tb$", r"^a\x09b$", "^a\nb$"])
def test_a_pattern_whose_literal_json_must_escape_is_refused_by_name(pattern: str) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "string", "pattern": pattern}}}
    with pytest.raises(ValueError, match=r"^properties\.n\.pattern matches a quote"):
        refuse_raw_literals(schema)
    with pytest.raises(ValueError, match="must escape"):
        schema_gbnf(json.dumps(schema))


@pytest.mark.parametrize("pattern", [r"^\d{3}-\w+$", '^[^"]+$', r"^[\t a-z]+$", r"^\.\$x$"])
def test_a_pattern_without_such_literals_passes(pattern: str) -> None:
    refuse_raw_literals({"anyOf": [{"type": "string", "pattern": pattern}]})
