"""Labelled prompts: the dev set's JSONL format, parsed and refused."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge_agent.router.policy import Route
from router_lab.dataset import LabelledPrompt, parse_dataset, read_dataset

DEV_PATH = Path(__file__).parents[2] / "data" / "router_dev.jsonl"
DEV = read_dataset(DEV_PATH)


def write_items(path: Path, items: Sequence[LabelledPrompt]) -> Path:
    lines = []
    for item in items:
        messages = [m.model_dump() for m in item.request.messages or ()]
        lines.append(json.dumps({"id": item.id, "messages": messages, "label": item.label}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dev_set_parses() -> None:
    assert len(DEV) == 160
    assert {i.label for i in DEV} == {Route.LOCAL, Route.CLOUD}


def test_parse_accepts_prompts_and_refuses_bad_lines() -> None:
    items = parse_dataset('{"id": "a", "prompt": "2+2", "label": "local", "max_tokens": 9}\n\n')
    assert items[0].request.prompt == "2+2" and items[0].request.params.max_tokens == 9
    with pytest.raises(ValueError, match=":1:"):
        parse_dataset('{"id": "a", "prompt": "x", "label": "maybe"}')
