"""The lab scores a conversation and its last ask alone with one model per fold."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.router.history import last_ask_request
from router_lab.dataset import LabelledPrompt
from router_lab.history import paired_scores
from tests.router_lab.test_dataset import DEV


def test_the_lower_score_is_the_last_asks_where_it_is_lower_and_only_for_conversations() -> None:
    groups = {"a": DEV[:40], "b": DEV[40:80]}
    conversations = {
        i.id for items in groups.values() for i in items if last_ask_request(i.request)
    }
    assert conversations and len(conversations) < 80, "the sample holds both kinds"
    seen: list[tuple[list[str], list[str]]] = []

    def scorer(training: Sequence[LabelledPrompt], test: Sequence[LabelledPrompt]) -> list[float]:
        # a conversation scores 0.6 as a whole and 0.2 alone; a single ask 0.4
        seen.append(([i.id for i in training], [i.id for i in test]))
        return [
            0.2 if i.id.endswith("#last-ask") else 0.6 if i.id in conversations else 0.4
            for i in test
        ]

    whole, lower = paired_scores(groups, scorer)
    for writer, items in groups.items():
        for n, item in enumerate(items):
            assert whole[writer][n] == (0.6 if item.id in conversations else 0.4)
            assert lower[writer][n] == (0.2 if item.id in conversations else 0.4)
    for (training, test), writer in zip(seen, groups, strict=True):
        assert not set(training) & {i.id for i in groups[writer]}, "fitted out of writer"
        alone = [t for t in test if t.endswith("#last-ask")]
        assert sorted(alone) == sorted(
            f"{i.id}#last-ask" for i in groups[writer] if i.id in conversations
        )
