"""Outcome labels for the data's checkable prompts: what an answer states, and relabelling."""

from __future__ import annotations

import json
from pathlib import Path

from router_lab.checked import apply, numbers_in, read_jsonl, run, stated_yes_no, states_answer

DATA = Path(__file__).parents[2] / "data"


def test_numbers_in_any_script_and_either_decimal_mark() -> None:
    assert numbers_in("1 inch = 2,54 cm") == [1.0, 2.54]
    assert numbers_in("It is 1,200 grams, or 1.2 kg") == [1200.0, 1.2]
    assert numbers_in("٥ + ٣ = ٨") == [5.0, 3.0, 8.0]  # noqa: RUF001
    assert numbers_in("３時間") == [3.0]
    assert numbers_in("no numbers") == []


def test_a_number_is_the_first_one_the_question_does_not_state() -> None:
    exact = {"kind": "number", "value": 68, "tolerance": 0}
    assert states_answer("17 x 4 = 68.", exact, "What is 17 times 4?")
    assert not states_answer("17 x 4 = 58, so 68.", exact, "What is 17 times 4?")
    assert not states_answer("about seventy", exact, "What is 17 times 4?")
    rough = {"kind": "number", "value": 37.78, "tolerance": 0.02}
    assert states_answer("100°F is about 37.8°C.", rough, "100 degrees F in celsius?")
    assert not states_answer("100°F is 212°C.", rough, "100 degrees F in celsius?")
    # the answer may be one of the question's own numbers ("double 25" is not 25)
    same = {"kind": "number", "value": 5, "tolerance": 0}
    assert states_answer("10 divided by 2 is 5.", same, "what is 10 / 2, is it 5?")
    # an echo of the question states nothing, even where the answer is one of its numbers
    echoed = {"kind": "number", "value": 2, "tolerance": 0}
    question = "¿Cuál es el resto de dividir 2^100 entre 7?"
    assert not states_answer("El resto de dividir 2^100 entre 7 es 7.", echoed, question)
    assert not states_answer("To find 2^100 mod 7, use a^b mod m.", echoed, "2^100 mod 7?")
    q = "remainder when 2^100 is divided by 7?"
    assert not states_answer("2^100 is 1 modulo 7, as 2^3 is", echoed, q)
    twelve = {"kind": "number", "value": 12, "tolerance": 0}
    assert not states_answer("144 divided by 12 equals 1.44.", twelve, "144 divided by 12?")
    assert states_answer("2^100 mod 7 = 2.", echoed, "2^100 mod 7?")


def test_yes_or_no_is_the_first_one_stated_in_the_answers_language() -> None:
    assert stated_yes_no("Yes, it is.") == "yes"
    assert stated_yes_no("No. Well, yes.") == "no"
    assert stated_yes_no("Nein, das stimmt nicht.") == "no"
    assert stated_yes_no("はい、そうです。") == "yes"
    assert stated_yes_no("Nothing to say") is None  # "no" inside a word is not "no"
    assert stated_yes_no("391 is a prime. It has no divisors but 1 and itself.") is None
    assert states_answer("Oui, bien sûr.", {"kind": "yesno", "value": "yes"}, "")
    assert states_answer("The capital is PARIS.", {"kind": "text", "accept": ["Paris"]}, "")


def test_where_the_question_offers_the_options_the_answer_must_pick_a_right_one_first() -> None:
    key = {"kind": "text", "accept": ["negative"], "reject": ["positive"]}
    question = "Is this review positive or negative? 'The soup was cold.'"
    assert states_answer("Negative: the soup was cold.", key, question)
    mixed = "The review is positive, but also a bit negative."
    assert not states_answer(mixed, key, question)
    assert states_answer(mixed, {"kind": "text", "accept": ["negative"]}, question)  # no options
    assert not states_answer("Is this review positive or negative? I think so.", key, question)
    assert not states_answer("The review is positive.", key, question)
    japanese = {"kind": "text", "accept": ["ポジティブ"], "reject": ["ネガティブ"]}
    asked = "この文はポジティブですか、ネガティブですか？「最高の一日でした！」"  # noqa: RUF001
    echo = "この文はポジティブですか、ネガティブですか？「最高"  # noqa: RUF001
    assert not states_answer(echo, japanese, asked)
    assert not states_answer(f"{echo}。{echo}", japanese, asked)  # however often it repeats
    assert states_answer("ポジティブです。", japanese, asked)
    spelling = {"kind": "text", "accept": ["definitely"], "reject": ["definately"]}
    assert not states_answer('"definately" and "definitely" differ', spelling, "definately or?")
    assert states_answer("It's definitely, with an i.", spelling, "definately or definitely?")


def test_an_extraction_must_state_every_value_the_key_names() -> None:
    key = {"kind": "all", "accept_all": ["2024-05-03", "Amara Osei", "director"]}
    whole = '[{"name": "Dr. Amara Osei", "role": "lab director", "date": "2024-05-03"}]'
    assert states_answer(whole, key, "")
    assert not states_answer(whole.replace("2024-05-03", "2024-03-05"), key, "")


def test_apply_relabels_by_outcome_and_keeps_the_writers_label(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "messages": [{"role": "user", "content": "7 x 8?"}], "label": "local"},
        {"id": "b", "messages": [{"role": "user", "content": "2 + 2?"}], "label": "local"},
        {"id": "c", "messages": [{"role": "user", "content": "hi"}], "label": "local"},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outcomes = [{"id": "a", "right": False}, {"id": "b", "right": True}]
    counts = apply([path], outcomes)
    after = {r["id"]: r for r in read_jsonl(path)}
    assert after["a"]["label"] == "cloud" and after["a"]["human_label"] == "local"
    assert after["b"]["label"] == "local" and "human_label" not in after["b"]
    assert after["c"] == rows[2]
    assert sum(counts.values()) == 2
    apply([path], [{"id": "a", "right": True}])  # applying again starts from the writer's
    assert read_jsonl(path)[0] == rows[0]


def test_a_corrected_key_rechecks_the_answers_on_record_without_a_model(tmp_path: Path) -> None:
    data, key, out = tmp_path / "set.jsonl", tmp_path / "key.jsonl", tmp_path / "out.jsonl"
    ask = {"id": "a", "messages": [{"role": "user", "content": "3 ft in cm?"}], "label": "local"}
    data.write_text(json.dumps(ask) + "\n", encoding="utf-8")
    out.write_text(json.dumps({"id": "a", "local_answer": "3 ft is 91 cm."}) + "\n")
    for value, right in ((90, False), (91.44, True)):
        rule = {"id": "a", "kind": "number", "value": value, "tolerance": 0.01}
        key.write_text(json.dumps(rule) + "\n", encoding="utf-8")
        [outcome] = run([data], key, out, reuse=True)
        assert outcome["right"] is right and read_jsonl(out) == [outcome]


def test_an_extended_key_answers_only_the_prompts_without_an_answer(tmp_path: Path) -> None:
    data, key, out = tmp_path / "set.jsonl", tmp_path / "key.jsonl", tmp_path / "out.jsonl"
    asks = [
        {"id": "a", "messages": [{"role": "user", "content": "3 ft in cm?"}], "label": "local"},
        {"id": "b", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "label": "local"},
    ]
    data.write_text("".join(json.dumps(a) + "\n" for a in asks), encoding="utf-8")
    on_record = "three feet make 91.44 cm"  # no model answers in these exact words
    out.write_text(json.dumps({"id": "a", "local_answer": on_record}) + "\n")
    rules = [
        {"id": "a", "kind": "number", "value": 91.44, "tolerance": 0.01},
        {"id": "b", "kind": "number", "value": 4, "tolerance": 0, "max_tokens": 8},
    ]
    key.write_text("".join(json.dumps(r) + "\n" for r in rules), encoding="utf-8")
    a, b = run([data], key, out, reuse=True)
    assert a["local_answer"] == on_record and a["right"]
    assert b["local_answer"].strip() and b["max_tokens"] == 8  # answered by the model now
    assert read_jsonl(out) == [a, b]


def test_every_relabelled_row_in_the_data_has_its_outcome_on_record() -> None:
    outcomes = {o["id"]: o for o in read_jsonl(DATA / "outcomes" / "checked.jsonl")}
    relabelled = [
        r for p in sorted(DATA.glob("*.jsonl")) for r in read_jsonl(p) if "human_label" in r
    ]
    assert relabelled, "no prompt in data/ is labelled by outcome"
    for row in relabelled:
        assert row["label"] == ("local" if outcomes[row["id"]]["right"] else "cloud")
