"""Labelled prompts for training and evaluating the router (the dev set's JSONL format).

One JSON object per line: ``id``, ``messages`` (chat turns) or ``prompt``, ``label``
(``local`` | ``cloud``), optional ``category``, ``lang``, ``max_tokens`` and ``source``
(who wrote the prompt, where a file mixes writers: ``router_lab.lowo`` groups by it). Parsing is
pure (text in, items out) so tests feed it strings; the CLIs read the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_agent.router.policy import Route
from shared.messages import ChatMessage, GenerateRequest, SamplingParams

__all__ = ["LabelledPrompt", "parse_dataset", "read_dataset"]


@dataclass(frozen=True)
class LabelledPrompt:
    """One request and where it should have been served."""

    id: str
    request: GenerateRequest
    label: Route
    category: str = ""
    lang: str = ""
    source: str = ""


def parse_dataset(text: str, *, source: str = "<text>") -> list[LabelledPrompt]:
    """Items of a JSONL text; a malformed line raises ``ValueError`` naming it."""
    items: list[LabelledPrompt] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            label = Route(row["label"])
            params = SamplingParams(max_tokens=row.get("max_tokens"))
            rid = str(row.get("id", f"line-{number}"))
            if "messages" in row:
                messages = tuple(ChatMessage(**m) for m in row["messages"])
                request = GenerateRequest(request_id=rid, messages=messages, params=params)
            else:
                request = GenerateRequest(request_id=rid, prompt=row["prompt"], params=params)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{source}:{number}: not a labelled prompt: {exc}") from exc
        items.append(
            LabelledPrompt(
                id=rid,
                request=request,
                label=label,
                category=str(row.get("category", "")),
                lang=str(row.get("lang", "")),
                source=str(row.get("source", "")),
            )
        )
    return items


def read_dataset(path: Path) -> list[LabelledPrompt]:
    """Items of the JSONL file at ``path``."""
    return parse_dataset(path.read_text(encoding="utf-8"), source=str(path))
