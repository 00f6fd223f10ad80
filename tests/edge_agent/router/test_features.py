"""Feature extraction: pure, on hand-written prompts (no model, no loop)."""

from __future__ import annotations

import pytest

from edge_agent.router.features import (
    CHARS_PER_TOKEN,
    FOCUS_CHARS,
    MULTI_PART_QUESTIONS,
    PromptFeatures,
    estimate_tokens,
    extract_features,
)
from edge_agent.router.terms import term_buckets
from shared.messages import ChatMessage, GenerateRequest, SamplingParams


def chat(*turns: tuple[str, str], max_tokens: int | None = None) -> PromptFeatures:
    messages = tuple(ChatMessage(role=role, content=text) for role, text in turns)  # type: ignore[arg-type]
    params = SamplingParams(max_tokens=max_tokens)
    return extract_features(GenerateRequest(request_id="r", messages=messages, params=params))


def ask(text: str) -> PromptFeatures:
    return chat(("user", text))


def test_estimate_tokens_rounds_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("a" * CHARS_PER_TOKEN) == 1
    assert estimate_tokens("a" * (CHARS_PER_TOKEN * 10 + 1)) == 11


def test_lengths_turns_and_max_tokens() -> None:
    features = chat(
        ("system", "s" * 40),
        ("user", "u" * 400),
        ("assistant", "a" * 8),
        ("user", "ok"),
        max_tokens=64,
    )
    assert features.turns == 4
    assert features.max_tokens == 64
    # every message counts for length, plus a few template tokens per turn
    assert 10 + 100 + 2 + 1 < features.prompt_tokens <= 10 + 100 + 2 + 1 + 4 * 4


def test_completion_prompt() -> None:
    request = GenerateRequest(request_id="r", prompt="x" * 80, params=SamplingParams(max_tokens=5))
    features = extract_features(request)
    assert (features.turns, features.prompt_tokens, features.max_tokens) == (1, 20, 5)


@pytest.mark.parametrize(
    "text",
    [
        "Hi! How are you today?",
        "What is the capital of France?",
        "Tell me a short joke about cats.",
        "Could you select a nice dress from the shop for me?",  # "select ... from", in English
        "I lose my keys all the time, any tips?",
        "Our meeting is on 2024-05-01, call 555-1234.",
        "Merci beaucoup, à bientôt !",
    ],
)
def test_plain_chat_has_no_flags(text: str) -> None:
    features = ask(text)
    assert not (features.has_code or features.has_math or features.has_reasoning), features


@pytest.mark.parametrize(
    "text",
    [
        "```python\nprint('hi')\n```",
        "def add(a, b):\n    return a + b\nwhy does this fail?",
        "#include <stdio.h>\nint main() { return 0; }",
        "SELECT name FROM users WHERE id = 3",
        "const f = (x) => x * 2; what does this do",
        "Write a python function that reverses a list",
        "Write a function that parses dates",
        "Escribe código para ordenar una lista",
        "Here is my stack trace, please help me debug it",
    ],
)
def test_code(text: str) -> None:
    assert ask(text).has_code


@pytest.mark.parametrize(
    "text",
    [
        "What is 12 * 7?",
        "Solve x^2 - 4 = 0",
        r"Compute \int_0^1 x^2 dx",
        "Find the derivative of sin(x)",
        "Prove that there are infinitely many primes",
        "If n > 3, what is the sum?",
        "Resuelve la ecuación 2x + 3 = 7",
        "Résous cette équation : 3y = 9",
        "Löse die Gleichung bitte",
        "What is 9 - 4?",
        "كم يساوي \u0665 + \u0663؟",  # Arabic-Indic digits (5 + 3) are digits too
    ],
)
def test_math(text: str) -> None:
    assert ask(text).has_math


@pytest.mark.parametrize(
    "text",
    [
        "Explain step by step how a bill becomes law",
        "Explain why the sky is blue",
        "Compare Paris and London as places to live",
        "Analyze the causes of the First World War",
        "What are the pros and cons of nuclear power",
        "Explícalo paso a paso, por favor",
        "Explique pourquoi le ciel est bleu",
        "Erkläre Schritt für Schritt die Fotosynthese",
        "Who wrote Hamlet? When? Where was he born?",
        "Please answer:\n1. capital of Peru\n2. its population\n3. its altitude",
    ],
)
def test_reasoning(text: str) -> None:
    assert ask(text).has_reasoning


def test_multi_part_needs_enough_questions() -> None:
    assert not ask("Hi! How are you? What's new?").has_reasoning
    assert ask("?" * MULTI_PART_QUESTIONS).questions == MULTI_PART_QUESTIONS


def test_system_prompt_is_not_scanned() -> None:
    features = chat(
        ("system", "Think step by step. Use ```code``` blocks. Solve x^2 = 4."), ("user", "Hi!")
    )
    assert not (features.has_code or features.has_math or features.has_reasoning)


def test_earlier_turns_count_for_flags_but_not_questions() -> None:
    features = chat(
        ("user", "def f(x): return x\nA? B? C?"),
        ("assistant", "Here you go? Anything else? More?"),
        ("user", "Thanks, now make it faster"),
    )
    assert features.has_code
    assert features.questions == 0


def test_a_turn_after_the_last_user_message_counts_for_code() -> None:
    features = chat(
        ("user", "hello"),
        ("assistant", "Hi!"),
        ("user", "what does this print?"),
        ("tool", "```python\nprint(sorted(set(words)))\n```"),
    )
    assert features.has_code
    assert not chat(("user", "hello"), ("assistant", "Hi!"), ("user", "what now?")).has_code


def test_hard_history_and_a_pointing_follow_up() -> None:
    hard = chat(
        ("user", "Prove that there are infinitely many primes."),
        ("assistant", "Suppose there were finitely many primes p1..pn. " * 20),
        ("user", "why does that work?"),
    )
    assert hard.history_hard and hard.follow_up
    assert hard.previous_answer_tokens > 100
    easy = chat(("user", "hi"), ("assistant", "Hello!"), ("user", "what is a cat?"))
    assert not easy.history_hard and not easy.follow_up
    assert not ask("why does that work?").follow_up, "a single turn points back at nothing"


def test_trivial_closing_ask_looks_only_at_the_end() -> None:
    letter = "Dear team, " + "the quarterly figures are attached and discussed. " * 30
    assert ask(letter + "Just tell me who signed it.").trivial_ask
    assert not ask("Just tell me who signed it. " + letter + "Summarise every point.").trivial_ask


def test_logic_language_and_number_size() -> None:
    f = ask("If each of 3 cats catches 391 mice, how many are left?")
    assert f.logic and f.max_number_digits == 3
    assert ask("Write a 1200-word essay on bees.").max_number_digits == 0, "a size, not maths"


def test_other_scripts_share() -> None:
    assert ask("Привет, как дела?").other_script_share > 0.5
    assert ask("hello there").other_script_share == 0.0


def test_a_long_prompt_in_a_script_without_spaces_is_cut_to_its_ends() -> None:
    """Character pairs of a pasted CJK document come from its start and end only, so the
    term count (and the time) stays bounded while the ask, at the start, still counts."""
    document = "".join(chr(0x4E00 + i % 2000) for i in range(3000))
    long = ask("请帮我总结这份文件" + document)
    assert term_buckets([], "请帮我总结这份文件", []) <= long.terms
    assert len(long.terms) < 3 * FOCUS_CHARS, "not one pair per character of the window"


EXPLANATION = (
    "Yes. Turing showed in 1936 that no general algorithm can decide, for every program "
    "and input, whether the program halts: assume one did and build a program that does "
    "the opposite of what it predicts about itself."
)


@pytest.mark.parametrize(
    "answer, follow_up, expected",
    [
        # A short follow-up asking more about an explanation continues a hard question.
        (EXPLANATION, "why though?", True),
        (EXPLANATION, "¿Y por qué?", True),
        (EXPLANATION, "\u0410 \u043f\u043e\u0447\u0435\u043c\u0443?", True),  # Russian "and why?"
        (EXPLANATION, "\u90a3\u4e3a\u4ec0\u4e48\uff1f", True),  # full-width mark
        ('```bash\nfor f in *.jpeg; do mv "$f" "${f%.jpeg}.jpg"; done\n```', "now recursive", True),
        # Thanks and goodbyes ask nothing, even when they point back ("that").
        (EXPLANATION, "thanks, that fixed it!!", False),
        (EXPLANATION, "ok that went way over my head lol. thanks anyway!", False),
        # A short answer explained nothing: "and grass?" is the easy question continued.
        ("Blue!", "and grass?", False),
        ("The capital of Italy is Rome.", "and greece?", False),
        # The assistant asked the user something: the reply answers it.
        (
            "That sounds like a blast! Is it a day trip or are you staying over, and with whom?",
            "just a day trip. what should i pack?",
            False,
        ),
    ],
)
def test_elaboration_is_a_question_continuing_a_substantive_answer(
    answer: str, follow_up: str, expected: bool
) -> None:
    features = chat(
        ("user", "is the halting problem really unsolvable?"),
        ("assistant", answer),
        ("user", follow_up),
    )
    assert features.elaboration is expected


def test_a_single_prompt_never_elaborates() -> None:
    assert not ask("why though?").elaboration
    assert not chat(("user", "why though?")).elaboration
