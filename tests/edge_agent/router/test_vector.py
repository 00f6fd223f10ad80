"""The feature table: one entry per input, each computed from the field it names."""

from __future__ import annotations

import math

from edge_agent.router.features import PromptFeatures
from edge_agent.router.terms import TermTable
from edge_agent.router.vector import FEATURE_NAMES, FEATURES, feature_vector

EVERYTHING = PromptFeatures(
    prompt_tokens=900,
    turns=3,
    max_tokens=200,
    questions=7,
    has_code=True,
    has_math=False,
    has_reasoning=True,
    last_user_tokens=80,
    last_sentence_tokens=12,
    has_system=True,
    cjk_share=0.25,
    numbers=11,
    proof=False,
    depth=True,
    writing=False,
    structure=True,
    planning=False,
    expert=True,
    easy=False,
    logic=True,
    trivial_ask=True,
    history_hard=True,
    follow_up=True,
    previous_answer_tokens=300,
    max_number_digits=9,
    terms=frozenset({1, 2, 3}),
    other_script_share=0.5,
    elaboration=True,
)


def test_names_are_unique_and_in_table_order() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == len(FEATURES)
    assert tuple(f.name for f in FEATURES) == FEATURE_NAMES


def test_every_feature_reads_the_field_it_names() -> None:
    table = TermTable({1: 1.0, 2: 2.0, 9: 5.0})
    expected = {
        "log_prompt_tokens": math.log1p(900),
        "log_last_user_tokens": math.log1p(80),
        "log_last_sentence_tokens": math.log1p(12),
        "log_turns": math.log1p(2),
        "log_max_tokens": math.log1p(200),
        "questions": 5.0,  # capped
        "numbers": 8.0,  # capped
        "cjk_share": 0.25,
        "has_system": 1.0,
        "code": 1.0,
        "math": 0.0,
        "reasoning": 1.0,
        "proof": 0.0,
        "depth": 1.0,
        "writing": 0.0,
        "structure": 1.0,
        "planning": 0.0,
        "expert": 1.0,
        "easy": 0.0,
        "logic": 1.0,
        "trivial_ask": 1.0,
        "history_hard": 1.0,
        "follow_up": 1.0,
        "log_previous_answer_tokens": math.log1p(300),
        "max_number_digits": 6.0,  # capped
        "other_script_share": 0.5,
        "elaboration": 1.0,
        "trivial_ask_x_log_length": math.log1p(80),
        "history_hard_x_follow_up": 1.0,
        "term_evidence": 1.5,  # mean of the known terms 1 and 2
    }
    assert list(expected) == list(FEATURE_NAMES)
    assert feature_vector(EVERYTHING, table) == tuple(expected.values())


def test_without_a_table_there_is_no_word_evidence() -> None:
    assert feature_vector(EVERYTHING)[FEATURE_NAMES.index("term_evidence")] == 0.0
