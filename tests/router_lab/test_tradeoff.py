"""The recall trade-off is read from a result's scores, and only with the data it scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router_lab.dataset import parse_dataset
from router_lab.lowo import main as lowo_main
from router_lab.tradeoff import main, sweep
from tests.router_lab.test_lowo import _file


def _lowo(tmp_path: Path, target: str) -> tuple[list[Path], dict[str, Any]]:
    paths = [_file(tmp_path / f"{w}.jsonl", w) for w in ("w1", "w2", "w3")]
    out = tmp_path / "lowo.json"
    assert (
        lowo_main(
            [*map(str, paths), "--rule", "recall", "--target-recall", target, "--json", str(out)]
        )
        == 0
    )
    return paths, json.loads(out.read_text())


def test_a_lower_recall_target_never_keeps_less() -> None:
    labels = {"a": [1, 1, 1, 0, 0, 0], "b": [1, 1, 0, 0, 0, 1], "c": [1, 0, 0, 1, 1, 0]}
    scores = {
        "a": [0.9, 0.6, 0.35, 0.3, 0.1, 0.5],
        "b": [0.8, 0.4, 0.2, 0.45, 0.05, 0.7],
        "c": [0.95, 0.25, 0.15, 0.55, 0.65, 0.3],
    }
    groups = {
        w: parse_dataset(
            "".join(
                json.dumps({"id": f"{w}-{n}", "prompt": "x", "label": "cloud" if y else "local"})
                + "\n"
                for n, y in enumerate(ys)
            )
        )
        for w, ys in labels.items()
    }
    rows = sweep(groups, scores, (0.99, 0.9, 0.8, 0.6))
    thresholds = [r.shipped_threshold for _, r in rows]
    kept = [r.mean["local_kept"] for _, r in rows]
    recall = [r.mean["cloud_recall"] for _, r in rows]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    assert kept == sorted(kept) and kept[0] < kept[-1]
    assert recall == sorted(recall, reverse=True) and recall[0] > recall[-1]


def test_the_row_at_the_results_own_target_is_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, result = _lowo(tmp_path, "0.9")
    capsys.readouterr()
    assert main([str(tmp_path / "lowo.json"), *map(str, paths), "--recall", "0.9", "0.5"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("features, 3 writers")
    row = next(line for line in printed if "recall 0.900" in line).split()
    assert float(row[2]) == pytest.approx(result["shipped_threshold"], abs=5e-4)
    mean = result["mean"]
    assert row[3:8:2] == [f"{mean[m]:.3f}" for m in ("accuracy", "cloud_recall", "local_kept")]
    assert any("recall 0.500" in line for line in printed)
    assert any("targets rule" in line for line in printed)


def test_a_result_from_other_data_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = _lowo(tmp_path, "0.97")
    capsys.readouterr()
    result = str(tmp_path / "lowo.json")
    # one writer fewer, and one more
    assert main([result, *map(str, paths[:2])]) == 2
    assert "missing [] extra ['w3']" in capsys.readouterr().err.replace(",", "")
    extra = _file(tmp_path / "w4.jsonl", "w4")
    assert main([result, *map(str, paths), str(extra)]) == 2
    assert "missing ['w4']" in capsys.readouterr().err
    # a writer's file grew after the result was written
    with paths[0].open("a") as f:
        f.write(json.dumps({"id": "w1-new", "prompt": "hello", "label": "local"}) + "\n")
    assert main([result, *map(str, paths)]) == 2
    assert "writer w1: 10 scores for 11 prompts" in capsys.readouterr().err


def test_bad_arguments_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = _lowo(tmp_path, "0.97")
    assert main([str(tmp_path / "lowo.json"), *map(str, paths), "--recall", "1.5"]) == 2
    assert "recall target" in capsys.readouterr().err
    assert main([str(tmp_path / "none.json"), *map(str, paths)]) == 2
    assert "none.json" in capsys.readouterr().err
    bad = json.loads((tmp_path / "lowo.json").read_text())
    bad["scores"]["w2"][3] = "high"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main([str(tmp_path / "bad.json"), *map(str, paths)]) == 2
    assert "writer w2: the scores are not a list of numbers" in capsys.readouterr().err
    for text in ("{}", "[1, 2]"):
        (tmp_path / "plain.json").write_text(text)
        assert main([str(tmp_path / "plain.json"), *map(str, paths)]) == 2
        assert "no per-writer scores" in capsys.readouterr().err
