"""Leave-one-writer-out: writers are files or sources, no fold sees its writer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge_agent.router.model import load_model
from edge_agent.router.policy import Route
from router_lab.dataset import LabelledPrompt, parse_dataset
from router_lab.lowo import (
    choose_for_targets,
    group_by_writer,
    main,
    out_of_writer_scores,
    summarise,
)
from tests.router_lab.test_dataset import DEV

EASY = ["hi there", "what does 'big' mean", "thanks!", "translate 'cat' to French", "2+2?"]
HARD = [
    "Prove that there are infinitely many primes, step by step.",
    "Write a Python class implementing an LRU cache with O(1) get and put, with tests.",
    "Compare the fiscal policies of Keynesian and monetarist economics in depth.",
    "Design a distributed rate limiter for a multi-region API and justify each choice.",
    "Derive the closed form of the sum of k^2 for k from 1 to n and prove it by induction.",
]


def _file(path: Path, prefix: str, source: str = "") -> Path:
    rows = [
        {
            "id": f"{prefix}-{n}",
            "prompt": text,
            "label": label,
            **({"source": source} if source else {}),
        }
        for n, (text, label) in enumerate(
            [(t, "local") for t in EASY] + [(t, "cloud") for t in HARD]
        )
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_writers_are_files_unless_rows_name_their_source(tmp_path: Path) -> None:
    a = _file(tmp_path / "a.jsonl", "a")
    b = _file(tmp_path / "b.jsonl", "b", source="helper")
    c = _file(tmp_path / "c.jsonl", "c", source="helper")
    groups = group_by_writer([a, b, c])
    assert sorted(groups) == ["a", "helper"]
    assert len(groups["helper"]) == 20 and len(groups["a"]) == 10


def test_no_fold_is_scored_by_a_model_that_saw_its_writer() -> None:
    seen: list[tuple[set[str], set[str]]] = []

    def scorer(training: Sequence[LabelledPrompt], test: Sequence[LabelledPrompt]) -> list[float]:
        seen.append(({i.id for i in training}, {i.id for i in test}))
        return [0.0] * len(test)

    groups = {"x": DEV[:40], "y": DEV[40:90], "z": DEV[90:]}
    scores = out_of_writer_scores(groups, scorer)
    assert [len(scores[w]) for w in groups] == [40, 50, 70]
    assert len(seen) == 3
    for training, test in seen:
        assert not training & test and len(training | test) == 160


def test_fold_thresholds_come_from_the_other_writers_only() -> None:
    def items(labels: str) -> list[LabelledPrompt]:
        lines = [
            json.dumps({"id": str(n), "prompt": "x", "label": "cloud" if c == "c" else "local"})
            for n, c in enumerate(labels)
        ]
        return parse_dataset("\n".join(lines))

    groups = {"a": items("cl"), "b": items("cl"), "c": items("cl")}
    # Writer c's scores are inverted: a threshold fitted on them would differ.
    scores = {"a": [0.9, 0.1], "b": [0.8, 0.2], "c": [0.3, 0.7]}
    result = summarise(groups, scores, rule="recall", target_recall=1.0)
    by_writer = {f.writer: f for f in result.folds}
    # c's threshold is chosen on a and b (cloud at 0.9 and 0.8, local at most 0.2):
    # halfway between 0.8 and 0.2, so c's cloud prompt (0.3) is missed.
    assert by_writer["c"].threshold == pytest.approx(0.5)
    assert by_writer["c"].figures.cloud_recall == 0.0
    # a's is chosen on b and c: c's cloud prompt at 0.3 pulls it down to 0.25.
    assert by_writer["a"].threshold == pytest.approx(0.25)
    assert by_writer["a"].figures.accuracy == 1.0
    assert result.worst["cloud_recall"] == 0.0
    accuracies = [f.figures.accuracy for f in result.folds]
    assert result.mean["accuracy"] == pytest.approx(sum(accuracies) / 3)
    assert result.worst["accuracy"] == min(accuracies) == 0.0
    # the shipped threshold sees every writer: recall 1.0 needs c's 0.3
    assert result.shipped_threshold == pytest.approx(0.25)
    assert by_writer["a"].figures.confusion["cloud"][Route.CLOUD.value] == 1


def test_main_reports_every_writer_with_mean_and_worst(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [_file(tmp_path / f"{w}.jsonl", w) for w in ("w1", "w2", "w3")]
    out = tmp_path / "lowo.json"
    assert main([*map(str, paths), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [f["writer"] for f in result["folds"]] == ["w1", "w2", "w3"]
    assert all(f["figures"]["n"] == 10 for f in result["folds"])
    for metric in ("accuracy", "cloud_recall", "local_kept"):
        values = [f["figures"][metric] for f in result["folds"]]
        assert result["worst"][metric] == min(values)
        assert result["mean"][metric] == pytest.approx(sum(values) / 3)
    printed = capsys.readouterr().out
    assert "w2" in printed and "worst" in printed and "mean" in printed
    assert 0 < result["shipped_threshold"] < 1


def test_one_writer_is_an_error(tmp_path: Path) -> None:
    assert main([str(_file(tmp_path / "only.jsonl", "o"))]) == 2
    assert main([str(tmp_path / "missing.jsonl"), str(tmp_path / "gone.jsonl")]) == 2


def test_the_targets_rule_protects_the_worst_writer_not_the_pooled_recall() -> None:
    # Writer "odd" has one hard prompt scored 0.05: reaching it (pooled recall) would
    # send every easy prompt of the others to the cloud. The targets rule keeps the
    # threshold above the others' easy prompts instead.
    labels = {"a": [1, 1, 0, 0], "b": [1, 1, 0, 0], "odd": [1, 1, 1, 0]}
    scores = {"a": [0.9, 0.8, 0.1, 0.2], "b": [0.7, 0.9, 0.2, 0.1], "odd": [0.9, 0.9, 0.05, 0.01]}
    threshold = choose_for_targets(labels, scores)
    assert 0.2 < threshold < 0.7


def test_weights_written_carry_the_lowo_threshold_and_figures(tmp_path: Path) -> None:
    paths = [_file(tmp_path / f"{w}.jsonl", w) for w in ("w1", "w2", "w3")]
    out, weights = tmp_path / "lowo.json", tmp_path / "weights.json"
    assert main([*map(str, paths), "--json", str(out), "--write-weights", str(weights)]) == 0
    result = json.loads(out.read_text())
    model = load_model(weights)
    assert model.threshold == result["shipped_threshold"]
    assert model.metadata is not None
    assert model.metadata["lowo"]["writers"] == 3
    assert model.metadata["rows"] == 30


def test_several_heads_blend_as_the_edge_blends_two() -> None:
    """Blending the features with one head is exactly the edge's ``table.blend``, so the
    shipped recipe's figures do not depend on how many heads the lab can blend; with
    more heads every score weighs the same."""
    import math

    from edge_agent.router.features import extract_features
    from edge_agent.router.table import blend
    from router_lab.lowo import blend_many, scorer_named

    for item in DEV[:40]:
        features = extract_features(item.request)
        for p, q in ((0.2, 0.7), (0.9, 0.05), (1e-12, 0.5)):
            logit_q = math.log(q / (1 - q))
            assert blend_many([p, q], features.elaboration) == pytest.approx(
                blend(p, logit_q, features.elaboration), abs=1e-12
            )
        three = blend_many([0.5, 0.5, 0.9], features.elaboration)
        mean = 1 / (1 + math.exp(-math.log(9) / 3))
        assert three == pytest.approx(max(mean, 0.9) if features.elaboration else mean)
    assert callable(scorer_named("features+split+hidden_split"))
    with pytest.raises(ValueError, match="unknown scorer"):
        scorer_named("features+nonsense")
