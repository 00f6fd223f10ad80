"""``python -m router_lab.outcomes``: labels from what the local model actually gets right.

RouteLLM's framing: the strong model is needed exactly when the weak one would fail. For
prompts whose answers can be checked (arithmetic, counting, unit conversion, extraction
from given text, yes/no facts) that is measurable rather than guessed. ``generate``
writes a seeded set of such prompts with their answers; ``run`` answers each with the
bundled local model through the edge's own runner (greedy, ``MAX_TOKENS`` tokens,
reading the (removed) confidence cascade's signal, ``inference.confidence``, on the first
``PROBE_TOKENS`` tokens), labels a prompt ``local`` when the answer is right and
``cloud`` when it is wrong, and writes the labelled file (the dev set's format, so
``python -m router_lab.evaluate`` measures the router against outcomes) with the
answer and confidence beside each row; ``report`` prints the router's figures against
those outcomes and the AUROC of each confidence signal for "the local answer is wrong".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["auroc", "check", "generate", "main", "question_of", "report"]

MAX_TOKENS = 48
PROBE_TOKENS = 8

_FACTS = [
    ("Is Paris the capital of France?", "yes"),
    ("Is the Pacific the largest ocean on Earth?", "yes"),
    ("Is water made of hydrogen and oxygen?", "yes"),
    ("Does a spider have eight legs?", "yes"),
    ("Is the Sun a star?", "yes"),
    ("Is Tokyo in Japan?", "yes"),
    ("Do penguins live in Antarctica?", "yes"),
    ("Is 7 a prime number?", "yes"),
    ("Is Mount Everest the tallest mountain above sea level?", "yes"),
    ("Is English written from left to right?", "yes"),
    ("Is Sydney the capital of Australia?", "no"),
    ("Is a tomato a vegetable in botany?", "no"),
    ("Does the Moon produce its own light?", "no"),
    ("Is 9 a prime number?", "no"),
    ("Is the Amazon river in Africa?", "no"),
    ("Do snakes have legs?", "no"),
    ("Is gold lighter than water?", "no"),
    ("Is Berlin the capital of Italy?", "no"),
    ("Is a whale a fish?", "no"),
    ("Does ice sink in water?", "no"),
]
_WORDS = [
    "strawberry", "banana", "mississippi", "bookkeeper", "committee", "parallel",
    "address", "balloon", "cheese", "letter", "assessment", "necessary", "apple",
    "coffee", "raspberry", "success",
]  # fmt: skip
_NAMES = ["Maria Lopez", "Tom Becker", "Aiko Tanaka", "Sam Okafor", "Lena Novak", "Raj Patel"]
_UNITS = [
    ("meters", "centimeters", 100),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("kilometers", "meters", 1000),
    ("days", "hours", 24),
    ("liters", "milliliters", 1000),
    ("feet", "inches", 12),
]


def generate(seed: int = 18, per_kind: int = 20) -> list[dict[str, Any]]:
    """Prompts with checkable answers: ``id``, ``messages``, ``category``, ``answer``."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, str]] = []
    for i in range(per_kind):
        big = i >= per_kind // 2
        a, b = (
            (rng.randint(100, 999), rng.randint(100, 999))
            if big
            else (
                rng.randint(2, 20),
                rng.randint(2, 20),
            )
        )
        op = rng.choice(["+", "-", "*"])
        value = a + b if op == "+" else a - b if op == "-" else a * b
        shown = {"+": "plus", "-": "minus", "*": "times"}[op]
        rows.append(("arithmetic", f"What is {a} {shown} {b}?", str(value)))
    for i in range(per_kind):
        word = _WORDS[i % len(_WORDS)]
        if i % 2 == 0:
            rows.append(("counting", f"How many letters are in the word '{word}'?", str(len(word))))
        else:
            letter = rng.choice(sorted(set(word)))
            rows.append(
                (
                    "counting",
                    f"How many times does the letter '{letter}' appear in '{word}'?",
                    str(word.count(letter)),
                )
            )
    for _ in range(per_kind):
        unit, small, factor = rng.choice(_UNITS)
        n = rng.randint(2, 12)
        rows.append(("unit_conversion", f"How many {small} are in {n} {unit}?", str(n * factor)))
    for _ in range(per_kind):
        name = rng.choice(_NAMES)
        order = rng.randint(10000, 99999)
        if rng.random() < 0.5:
            text = (
                f"Hi, this is {name}. My package from order #{order} still hasn't arrived "
                "and it's been two weeks. Can you check?"
            )
            rows.append(
                ("extraction", f'What is the order number in this message? "{text}"', str(order))
            )
        else:
            text = f"Invoice {order} was paid on 3 May by {name} via bank transfer."
            rows.append(("extraction", f'Who paid the invoice? "{text}"', name))
    for question, answer in _FACTS[:per_kind]:
        rows.append(("yes_no_fact", f"{question} Answer yes or no.", answer))
    return [
        {
            "id": f"oc-{n:03d}",
            "messages": [{"role": "user", "content": prompt}],
            "category": category,
            "answer": answer,
            "lang": "en",
        }
        for n, (category, prompt, answer) in enumerate(rows, start=1)
    ]


def check(answer: str, expected: str, question: str = "") -> bool:
    """Whether ``answer`` states ``expected``: for a number, the first number in the answer
    that is not one of the question's own (an answer that restates "17 x 4 = 68" states
    68); for yes/no, the first yes or no; for a name, containment."""
    text = answer.strip().lower()
    if re.fullmatch(r"-?\d+", expected):
        given = {n.replace(",", "") for n in _NUMBER.findall(question)} - {expected}
        numbers = [n.replace(",", "") for n in _NUMBER.findall(text)]
        stated = [n for n in numbers if n not in given]
        return bool(stated) and stated[0] == expected
    if expected in ("yes", "no"):
        found = re.search(r"\b(yes|no)\b", text)
        return found is not None and found.group(1) == expected
    return expected.lower() in text


_NUMBER = re.compile(r"-?\d[\d,]*\d|-?\d")


def question_of(row: dict[str, Any]) -> str:
    return str(row["messages"][-1]["content"])


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Probability a positive outscores a negative (ties count half); 0.5 if undefined."""
    pos = [s for s, p in zip(scores, positives, strict=True) if p]
    neg = [s for s, p in zip(scores, positives, strict=True) if not p]
    if not pos or not neg:
        return 0.5
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


async def _answer_all(rows: list[dict[str, Any]]) -> None:
    from inference.confidence import ConfidenceProbe
    from inference.llama import LlamaRunner, RunnerConfig
    from inference.models import resolve_model
    from shared.messages import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

    runner = LlamaRunner(RunnerConfig(model_path=resolve_model(None), n_ctx=1024, n_threads=1))
    await runner.load()
    try:
        for row in rows:
            probe = ConfidenceProbe(PROBE_TOKENS)
            request = GenerateRequest(
                request_id=row["id"],
                messages=tuple(ChatMessage(**m) for m in row["messages"]),
                params=SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0),
            )
            text = "".join(
                [
                    e.text
                    async for e in runner.stream(request, probe=probe)
                    if isinstance(e, TokenChunk)
                ]
            )
            values = probe.values or []
            row["local_answer"] = text
            row["label"] = "local" if check(text, row["answer"], question_of(row)) else "cloud"
            row["confidence"] = {
                "mean_margin": sum(v.margin for v in values) / max(1, len(values)),
                "min_margin": min((v.margin for v in values), default=0.0),
                "mean_logprob": sum(v.logprob for v in values) / max(1, len(values)),
                "min_logprob": min((v.logprob for v in values), default=0.0),
            }
    finally:
        await runner.aclose()


def report(rows: list[dict[str, Any]], model: Path | None = None) -> dict[str, Any]:
    """The shipped router against the outcome labels, and each confidence's AUROC."""
    from edge_agent.router.model import load_model
    from edge_agent.router.policy import Route, Router, RouterConfig
    from router_lab.dataset import parse_dataset
    from router_lab.evaluate import figures, route_all

    items = parse_dataset("\n".join(json.dumps(r) for r in rows))
    routes, _ = route_all(Router(RouterConfig(), load_model(model)), items)
    result = figures([i.label for i in items], routes)
    wrong = [r["label"] == "cloud" for r in rows]
    signals = {
        name: auroc([-r["confidence"][name] for r in rows], wrong)
        for name in ("mean_margin", "min_margin", "mean_logprob", "min_logprob")
    }
    by_category: dict[str, list[int]] = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(int(r["label"] == "local"))
    return {
        "n": len(rows),
        "local_right": sum(not w for w in wrong),
        "local_right_by_category": {k: f"{sum(v)}/{len(v)}" for k, v in by_category.items()},
        "router": {
            "accuracy": result.accuracy,
            "cloud_recall": result.cloud_recall,
            "local_kept": result.local_kept,
            "cloud_share": result.cloud_share,
            "confusion": result.confusion,
            "sent_to_cloud_of_local_right": sum(
                1
                for r, route in zip(rows, routes, strict=True)
                if r["label"] == "local" and route is Route.CLOUD
            ),
        },
        "confidence_auroc_for_wrong": signals,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router_lab.outcomes")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate, answer with the local model, label, write")
    run.add_argument("--out", type=Path, default=Path("data/outcomes/router_outcomes.jsonl"))
    run.add_argument("--seed", type=int, default=18)
    rep = sub.add_parser("report", help="the router and the confidence against outcomes")
    rep.add_argument(
        "file", type=Path, nargs="?", default=Path("data/outcomes/router_outcomes.jsonl")
    )
    rep.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        rows = generate(args.seed)
        asyncio.run(_answer_all(rows))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        right = sum(r["label"] == "local" for r in rows)
        print(f"{len(rows)} prompts, {right} answered right locally -> {args.out}")
        return 0
    from router_lab.checked import read_jsonl

    result = report(read_jsonl(args.file))
    print(json.dumps(result, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
