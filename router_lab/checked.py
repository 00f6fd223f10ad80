"""``python -m router_lab.checked``: the labelled data's checkable prompts, labelled by outcome.

People label "what's 7 times 8?" ``local``: a small model *should* manage it. The
bundled 135M model mostly does not (``router_lab.outcomes``: arithmetic 2 of 20 right,
unit conversions 0 of 20), so such labels teach the router a convention rather than
what the local model can do. Where a prompt in ``data/*.jsonl`` has an answer that
can be checked, the answer key (``data/outcomes/answer_key.jsonl``: a number with a
tolerance, yes or no, short strings one of which the answer must contain, or, for an
extraction, values all of which it must contain; where the question offers the options,
as in "positive or negative?", the key also names the wrong ones, and the answer must
state a right one first, its copy of the question aside) says what is right; ``run`` answers
each keyed prompt with the bundled model through the edge's own runner (greedy,
``MAX_TOKENS`` tokens unless the key asks for more, one thread, the edge's default context) and
records whether the answer states it (``data/outcomes/checked.jsonl``); ``apply``
relabels those prompts in ``data/*.jsonl`` by the outcome (``local`` when right,
``cloud`` when wrong), keeping the writer's label as ``human_label`` where the two
differ, so every change stays visible and can be undone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["apply", "numbers_in", "read_jsonl", "stated_yes_no", "states_answer"]

MAX_TOKENS = 48
CHECKABLE = ("number", "yesno", "text", "all")
KEY = Path("data/outcomes/answer_key.jsonl")
OUTCOMES = Path("data/outcomes/checked.jsonl")

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
# The first yes or no of an answer, in the data's languages (one word each, space-separated).
_YES = "yes ja oui sí si sì sim да так evet ya tak ναι כן نعم có ha हाँ हां ndiyo igen kyllä はい 是 네 예"  # noqa: RUF001, E501
_NO = "no nein non não нет ні hayır tidak nie όχι לא لا không nahi नहीं hapana nem ei いいえ 不是 不 아니 아니요"  # noqa: RUF001, E501
_POWER = re.compile(r"\d+\s*\^\s*\d+")  # "2^100" is the question's expression, never an answer
_SCRIPTS_WITHOUT_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _ascii_digits(text: str) -> str:
    """Any script's decimal digits (Arabic-Indic, Devanagari, full-width) as ASCII."""
    return "".join(
        str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text
    )


def _value(token: str) -> float:
    """``1,000`` and ``1.000.000`` group thousands, ``2,54`` and ``2.54`` are decimals:
    a mark followed by exactly three digits, repeated, groups thousands; a single mark
    is a decimal point (``1.000`` reads as one, the English way)."""
    marks = re.findall(r"[.,]", token)
    if len(marks) > 1 and re.fullmatch(r"-?\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*(?:[.,]\d+)?", token):
        grouping = marks[0]
        whole, _, fraction = token.replace(grouping, "").partition("," if grouping == "." else ".")
        return float(f"{whole}.{fraction}" if fraction else whole)
    if len(marks) == 1 and re.fullmatch(r"-?\d{1,3},\d{3}", token):
        return float(token.replace(",", ""))
    if len(marks) > 1:  # not a number people write; read its digits
        return float(re.sub(r"[.,]", "", token))
    return float(token.replace(",", "."))


def numbers_in(text: str) -> list[float]:
    """The numbers ``text`` states, in order."""
    return [_value(t) for t in _NUMBER.findall(_ascii_digits(text))]


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= max(tolerance * abs(b), 1e-9)


def stated_yes_no(answer: str) -> str | None:
    """The yes or no ``answer``'s first sentence states, in any of the data's languages
    (later sentences explain, and "no" turns up in "no divisors other than 1")."""
    text = re.split(r"[.!?。\uff01\uff1f\n]", answer.strip().lower(), maxsplit=1)[0]
    found: list[tuple[int, str]] = []
    for words, verdict in ((_YES, "yes"), (_NO, "no")):
        for word in words.split():
            if _SCRIPTS_WITHOUT_SPACES.search(word):
                at = text.find(word)
            else:
                match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)
                at = match.start() if match else -1
            if at >= 0:
                found.append((at, verdict))
    return min(found)[1] if found else None


def states_answer(answer: str, key: dict[str, Any], question: str) -> bool:
    """Whether ``answer`` states what ``key`` says is right. A number: the first number
    in the answer that is not the question's own (all of them, or, where the answer is
    one of the question's numbers, each as often as the question states it:
    ``_past_the_echo``), powers such as "2^100" aside, within the key's relative
    tolerance. yes/no: the first one
    stated. Text: any of the accepted strings, ignoring case; with rejected ones too, an
    accepted one first (``_chooses``)."""
    kind = key["kind"]
    if kind == "number":
        expected, tolerance = float(key["value"]), float(key.get("tolerance", 0.0))
        given = numbers_in(_POWER.sub(" ", question))
        stated = numbers_in(_POWER.sub(" ", answer))
        if any(_close(g, expected, tolerance) for g in given):
            stated = _past_the_echo(stated, given)
        else:  # none of the question's numbers is the answer: skip them wherever they are
            stated = [n for n in stated if not any(_close(n, g, 0.0) for g in given)]
        return bool(stated) and _close(stated[0], expected, tolerance)
    if kind == "yesno":
        return stated_yes_no(answer) == str(key["value"])
    if kind == "text":
        if key.get("reject"):
            return _chooses(answer, key["accept"], key["reject"], question)
        text = answer.lower()
        return any(str(s).lower() in text for s in key["accept"])
    if kind == "all":
        text = answer.lower()
        return all(str(s).lower() in text for s in key["accept_all"])
    raise ValueError(f"not a checkable kind: {kind!r}")


ECHO_CHARS = 16
"""A stretch of the question at least this long, copied into an answer, is its echo."""


def _chooses(answer: str, accept: list[str], reject: list[str], question: str) -> bool:
    """Whether ``answer`` picks an accepted option before any rejected one, where the
    question offers both ("positive or negative?", "'seperate' or 'separate'?"): an
    answer that merely contains the right word ("positive, but also a bit negative",
    or the question copied back) has not chosen it. The question's echo is left out
    first, so an answer that repeats "ポジティブですか、ネガティブですか" picks neither."""
    text = _without_echo(answer, question).lower()

    def first(options: list[str]) -> int:
        found = [text.find(str(o).lower()) for o in options]
        return min((at for at in found if at >= 0), default=-1)

    chosen, refused = first(accept), first(reject)
    return chosen >= 0 and (refused < 0 or chosen < refused)


def _without_echo(answer: str, question: str) -> str:
    """``answer`` with every stretch of ``ECHO_CHARS`` or more characters that the
    question also holds (ignoring case) blanked out, wherever and however often the
    answer repeats it."""
    text, asked = answer.lower(), question.lower()
    if len(text) != len(answer):  # a letter whose lower case is two ("İ"): keep the case
        text, asked = answer, question
    kept = list(answer)
    start = 0
    while start + ECHO_CHARS <= len(text):
        end = start + ECHO_CHARS
        if text[start:end] not in asked:
            start += 1
            continue
        while end < len(text) and text[start : end + 1] in asked:
            end += 1
        kept[start:end] = " " * (end - start)
        start = end
    return "".join(kept)


def _past_the_echo(stated: list[float], given: list[float]) -> list[float]:
    """The answer's numbers less one occurrence of each the question states: "17 x 4 =
    68" states 68, and "2^100 mod 7 is 7" states 7 although 7 is in the question. An
    answer that only confirms ("10 / 2 is 5" to "is 10 / 2 5?") keeps its last number."""
    left = list(given)
    rest = []
    for n in stated:
        echo = next((i for i, g in enumerate(left) if _close(n, g, 0.0)), None)
        if echo is None:
            rest.append(n)
        else:
            del left[echo]
    return rest or stated[-1:]


def _checkable(key: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in key if k["kind"] in CHECKABLE}


def budget(key: dict[str, Any]) -> int:
    """The tokens an answer may take: a JSON extraction needs more than a number does."""
    return int(key.get("max_tokens", MAX_TOKENS))


PAST_CONTEXT = "(past the local context: not answered)"
"""The recorded answer to a prompt longer than the edge's local context, which the edge
sends to the cloud before any local answer (and which no key accepts)."""


async def _answer(
    rows: list[dict[str, Any]], budgets: list[int], save: Callable[[str, str], None]
) -> None:
    from inference import ContextTooLong
    from router_lab.embed import prompt_runner
    from shared.messages import ChatMessage, GenerateRequest, SamplingParams, TokenChunk

    runner = prompt_runner()
    await runner.load()
    try:
        for n, (row, max_tokens) in enumerate(zip(rows, budgets, strict=True), start=1):
            request = GenerateRequest(
                request_id=row["id"],
                messages=tuple(ChatMessage(**m) for m in row["messages"]),
                params=SamplingParams(max_tokens=max_tokens, temperature=0.0),
            )
            try:
                stream = runner.stream(request)
                chunks = [e.text async for e in stream if isinstance(e, TokenChunk)]
            except ContextTooLong:
                chunks = [PAST_CONTEXT]
            save(row["id"], "".join(chunks))
            if n % 25 == 0:
                print(f"{n}/{len(rows)} answered", file=sys.stderr, flush=True)
    finally:
        await runner.aclose()


def _write(out: Path, outcomes: Iterable[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in outcomes)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)


def run(
    data: list[Path], key_path: Path, out: Path, *, reuse: bool = False
) -> list[dict[str, Any]]:
    """Answer every keyed prompt of ``data`` locally, check each against the key, and
    write and return the outcomes. With ``reuse``, an answer ``out`` already holds for
    the same token budget is taken as it is (a corrected or extended key needs the model
    only for what is new, and an interrupted run goes on where it stopped: the answers
    are saved as they come)."""
    key = _checkable(read_jsonl(key_path))
    rows = [r for path in data for r in read_jsonl(path) if r["id"] in key]
    budgets = {r["id"]: budget(key[r["id"]]) for r in rows}
    held: dict[str, dict[str, Any]] = {}
    if reuse and out.exists():
        held = {
            o["id"]: o
            for o in read_jsonl(out)
            if o["id"] in budgets and o.get("max_tokens", MAX_TOKENS) == budgets[o["id"]]
        }

    def save(row_id: str, answer: str) -> None:
        n = budgets[row_id]
        held[row_id] = {"id": row_id, "local_answer": answer}
        if n != MAX_TOKENS:
            held[row_id]["max_tokens"] = n
        if len(held) % 25 == 0:  # the answers take the model minutes: keep them as they come
            _write(out, held.values())

    todo = [r for r in rows if r["id"] not in held]
    if todo:
        asyncio.run(_answer(todo, [budgets[r["id"]] for r in todo], save))
    outcomes = []
    for row in rows:
        record = held[row["id"]]
        outcome = {"id": row["id"], "category": row.get("category", ""), **record}
        outcome.pop("right", None)
        question = row["messages"][-1]["content"]
        outcome["right"] = states_answer(outcome["local_answer"], key[row["id"]], question)
        outcomes.append(outcome)
    _write(out, outcomes)
    return outcomes


def apply(data: list[Path], outcomes: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Relabel ``data``'s checked prompts by outcome, in place; count (category, writer's
    label, outcome label)."""
    label_of = {o["id"]: "local" if o["right"] else "cloud" for o in outcomes}
    counts: Counter[tuple[str, str, str]] = Counter()
    for path in data:
        rows = read_jsonl(path)
        for row in rows:
            if row["id"] not in label_of:
                continue
            human = row.get("human_label", row["label"])
            row["label"] = label_of[row["id"]]
            row.pop("human_label", None)
            if human != row["label"]:
                row["human_label"] = human
            counts[(row.get("category", ""), human, row["label"])] += 1
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path.write_text(text, encoding="utf-8")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router_lab.checked", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "answer the keyed prompts locally and write the outcomes"),
        ("apply", "relabel the keyed prompts in the data files by the written outcomes"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("data", type=Path, nargs="*", help="default: data/*.jsonl")
        command.add_argument("--key", type=Path, default=KEY)
        command.add_argument("--outcomes", type=Path, default=OUTCOMES)
    sub.choices["run"].add_argument(
        "--reuse-answers",
        action="store_true",
        help="keep the answers the outcomes file holds; answer only the prompts it lacks",
    )
    args = parser.parse_args(argv)
    data = args.data or sorted(Path("data").glob("*.jsonl"))
    if args.command == "run":
        outcomes = run(data, args.key, args.outcomes, reuse=args.reuse_answers)
        right = Counter(o["category"] for o in outcomes if o["right"])
        total = Counter(o["category"] for o in outcomes)
        for category in sorted(total):
            print(f"{category}: {right[category]}/{total[category]} right locally")
        print(f"-> {args.outcomes}")
        return 0
    counts = apply(data, read_jsonl(args.outcomes))
    for (category, human, label), n in sorted(counts.items()):
        print(f"{category}: written {human}, outcome {label}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
