"""Outcome labels: checkable prompts, checked answers, and the AUROC of a signal."""

from __future__ import annotations

import json
from pathlib import Path

from router_lab.dataset import parse_dataset
from router_lab.outcomes import auroc, check, generate, question_of, report

OUTCOMES = Path(__file__).parents[2] / "data" / "outcomes" / "router_outcomes.jsonl"


def test_generated_prompts_are_seeded_and_parse_as_labelled_rows() -> None:
    rows = generate(seed=3, per_kind=4)
    assert rows == generate(seed=3, per_kind=4)
    assert {r["category"] for r in rows} == {
        "arithmetic", "counting", "unit_conversion", "extraction", "yes_no_fact",
    }  # fmt: skip
    items = parse_dataset("\n".join(json.dumps({**r, "label": "local"}) for r in rows))
    assert len(items) == len(rows)


def test_answers_are_checked_by_what_they_state() -> None:
    assert check("17 x 4 = 68.", "68", "What is 17 times 4?")  # restating is not answering
    assert not check("17 x 4 = 58.", "68", "What is 17 times 4?")
    assert check("There are 300 centimeters in 3 meters.", "300", "How many cm in 3 m?")
    assert check("The answer is 68.", "68")
    assert check("It is 1,200 grams", "1200")
    assert not check("about seventy", "68")
    assert check("Yes, it is.", "yes") and not check("No. Well, yes.", "yes")
    assert check("The invoice was paid by Maria Lopez.", "Maria Lopez")


def test_auroc() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.3], [True]) == 0.5


def test_the_committed_outcome_set_reports_the_router_and_the_confidence() -> None:
    rows = [json.loads(line) for line in OUTCOMES.read_text().splitlines() if line.strip()]
    for row in rows:  # each label is what the recorded local answer earned
        assert row["label"] == (
            "local" if check(row["local_answer"], row["answer"], question_of(row)) else "cloud"
        )
    result = report(rows)
    assert result["n"] == len(rows) == 100
    assert set(result["confidence_auroc_for_wrong"]) == {
        "mean_margin", "min_margin", "mean_logprob", "min_logprob",
    }  # fmt: skip
    assert sum(sum(r.values()) for r in result["router"]["confusion"].values()) == 100


def test_the_committed_set_is_the_seeded_one() -> None:
    rows = [json.loads(line) for line in OUTCOMES.read_text().splitlines() if line.strip()]
    expected = generate()
    assert [(r["messages"], r["answer"]) for r in rows] == [
        (g["messages"], g["answer"]) for g in expected
    ]
