"""The evaluation command on files of the dev set's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.router.policy import Route
from router_lab.evaluate import figures, main, percentile
from tests.router_lab.test_dataset import DEV_PATH


def test_figures_and_confusion() -> None:
    labels = [Route.CLOUD, Route.CLOUD, Route.LOCAL, Route.LOCAL]
    predicted = [Route.CLOUD, Route.LOCAL, Route.LOCAL, Route.CLOUD]
    f = figures(labels, predicted, [1.0, 2.0, 3.0, 4.0])
    assert (f.accuracy, f.cloud_recall, f.local_kept, f.cloud_share) == (0.5, 0.5, 0.5, 0.5)
    assert f.confusion == {"local": {"local": 1, "cloud": 1}, "cloud": {"local": 1, "cloud": 1}}
    assert (f.p50_ms, f.p99_ms) == (2.0, 4.0)
    assert percentile([], 99) == 0.0
    assert percentile([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 50) == 3.0  # nearest rank, as bench's


@pytest.mark.parametrize("router", ["learned", "heuristic"])
def test_main_prints_and_writes_the_same_figures(
    router: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    assert main([str(DEV_PATH), "--json", str(out), "--router", router]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["n"] == 160
    assert f"accuracy       {result['accuracy']:.3f}" in printed
    assert sum(sum(row.values()) for row in result["confusion"].values()) == 160
    wrong = result["confusion"]["local"]["cloud"] + result["confusion"]["cloud"]["local"]
    assert len(result["misrouted"]) == wrong  # each one named, to read back in the file
    assert all(m["label"] != m["routed"] for m in result["misrouted"])


def test_learned_router_beats_the_heuristic_baseline_on_cloud_recall(tmp_path: Path) -> None:
    learned, heuristic = tmp_path / "l.json", tmp_path / "h.json"
    assert main([str(DEV_PATH), "--json", str(learned)]) == 0
    assert main([str(DEV_PATH), "--json", str(heuristic), "--router", "heuristic"]) == 0
    ours, baseline = json.loads(learned.read_text()), json.loads(heuristic.read_text())
    assert ours["cloud_recall"] > baseline["cloud_recall"]
    assert ours["accuracy"] > baseline["accuracy"]


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing.jsonl")]) == 2


def test_any_labelled_file_evaluates_extra_fields_and_all(tmp_path: Path) -> None:
    """The outcome set carries answers and confidences beside the labelled format."""
    outcomes = DEV_PATH.parent / "outcomes" / "router_outcomes.jsonl"
    out = tmp_path / "figures.json"
    assert main([str(outcomes), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n"] == 100
