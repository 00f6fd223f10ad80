"""The decision snapshot: one record per labelled prompt, the same on every run."""

from __future__ import annotations

import json
from pathlib import Path

from router_lab.snapshot import main
from tests.router_lab.test_dataset import DEV, write_items


def test_snapshot_records_every_prompt_and_repeats_itself(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_items(data / "a.jsonl", DEV[:12])
    write_items(data / "b.jsonl", DEV[12:20])
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert main([str(first), "--data", str(data)]) == 0
    assert main([str(second), "--data", str(data)]) == 0
    assert first.read_bytes() == second.read_bytes()
    records = json.loads(first.read_text())
    assert [r["file"] for r in records] == ["a.jsonl"] * 12 + ["b.jsonl"] * 8
    record = records[0]
    assert record["route"] in ("local", "cloud") and float(record["p_cloud"]) >= 0
    assert len(record["vector"]) == 30


def test_no_data_is_an_error(tmp_path: Path) -> None:
    assert main([str(tmp_path / "out.json"), "--data", str(tmp_path)]) == 2
