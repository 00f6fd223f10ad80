"""The leave-one-writer-out misses, by whether a prompt's label is written or an outcome."""

from __future__ import annotations

import json
from pathlib import Path

from router_lab.lowo import group_by_writer, summarise
from router_lab.origins import as_json, by_origin, checked_ids, render_origins
from tests.router_lab.test_lowo import _file


def test_each_prompt_counts_once_at_its_own_folds_threshold(tmp_path: Path) -> None:
    groups = group_by_writer([_file(tmp_path / "a.jsonl", "a"), _file(tmp_path / "b.jsonl", "b")])
    # Five easy then five hard prompts per writer; writer a's scores put two easy prompts
    # over any threshold and one hard prompt under it, writer b's route every prompt right.
    scores = {
        "a": [0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9],
        "b": [0.1] * 5 + [0.9] * 5,
    }
    result = summarise(groups, scores, thresholds={"a": 0.5, "b": 0.5})
    checked = {"a-0", "a-4", "a-5", "b-5"}  # a-0 easy and sent, a-5 hard and kept
    origins = {
        o.name.split(":")[0]: (o.routed_right, o.n) for o in by_origin(result, groups, checked)
    }
    assert origins == {
        "local as written (nothing to check)": (7, 8),  # a-1 sent
        "local by outcome (the model answers right)": (1, 2),  # a-0 sent, a-4 kept
        "cloud by outcome (the model answers wrong)": (1, 2),  # a-5 kept, b-5 sent
        "cloud as written (nothing to check)": (8, 8),
    }
    rows = as_json(by_origin(result, groups, checked))
    assert sum(r["n"] for r in rows) == 20 and rows[1]["share"] == 0.5
    assert "7 / 8" in render_origins(by_origin(result, groups, checked))


def test_the_outcome_labelled_prompts_are_those_the_outcomes_file_names(tmp_path: Path) -> None:
    path = tmp_path / "checked.jsonl"
    assert checked_ids(path) == set()
    path.write_text("".join(json.dumps({"id": i, "right": True}) + "\n" for i in ("x", "y")))
    assert checked_ids(path) == {"x", "y"}
