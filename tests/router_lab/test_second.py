"""The lab's second look computes what the edge computes, from the same state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge_agent.router import extract_features
from edge_agent.router.model import ELABORATION_FLOOR, logit
from edge_agent.router.second import PromptHead, SecondLook
from router_lab.embed import prompt_key
from router_lab.head import fit_head
from router_lab.second import two_looks, unstandardised
from shared.messages import GenerateRequest
from tests.router_lab.test_dataset import DEV


@pytest.mark.parametrize("weight", [1, 3])
def test_a_sure_first_look_skips_the_second_and_the_rest_blend_three(weight: int) -> None:
    items = DEV[:6]
    groups = {"w": items}
    features = {"w": [0.9, 0.6, 0.2, 0.05, 0.5, 0.8]}
    split = {"w": [0.8, 0.7, 0.3, 0.1, 0.5, 0.9]}
    prompt = {"w": [0.1, 0.9, 0.9, 0.2, 0.5, 0.1]}
    first, final, looked = two_looks(groups, features, split, prompt, sure=0.7, weight=weight)
    for n, item in enumerate(items):
        elaboration = extract_features(item.request).elaboration
        raw = 1 / (1 + math.exp(-(logit(features["w"][n]) + logit(split["w"][n])) / 2))
        assert first["w"][n] == pytest.approx(max(raw, ELABORATION_FLOOR) if elaboration else raw)
        assert looked["w"][n] == (raw < 0.7)  # the floor does not decide whether to look
        if raw >= 0.7:
            assert final["w"][n] == 1.0
        else:  # as the edge's SecondLook scores it, given the head's log-odds
            bias = logit(prompt["w"][n])
            head = PromptHead("0" * 64, np.zeros(1), bias, 0.7, 0.5, weight=weight)
            look = SecondLook(head, logit(features["w"][n]), logit(split["w"][n]))
            assert final["w"][n] == pytest.approx(look.score(np.zeros(1, dtype=np.float32)))


def test_where_a_look_follows_it_reads_the_lower_scores() -> None:
    items = DEV[:3]
    groups = {"w": items}
    features, split = {"w": [0.9, 0.6, 0.5]}, {"w": [0.9, 0.7, 0.5]}
    lower = ({"w": [0.2, 0.6, 0.5]}, {"w": [0.3, 0.7, 0.5]})
    prompt = {"w": [0.5, 0.5, 0.5]}
    first, final, looked = two_looks(groups, features, split, prompt, sure=0.8, lower=lower)
    plain, _, _ = two_looks(groups, features, split, prompt, sure=0.8)
    assert first == plain, "the first look alone reads the whole conversation"
    assert looked["w"] == [True, True, True]  # 0.9 and 0.9 would be sure; 0.2 and 0.3 not
    expect = 1 / (1 + math.exp(-(logit(0.2) + logit(0.3) + 3 * logit(0.5)) / 5))
    assert final["w"][0] == pytest.approx(expect)


def test_the_shipped_weights_read_raw_states_as_the_fitted_head_reads_standardised_ones() -> None:
    rng = np.random.default_rng(3)
    xs = rng.normal(2.0, 5.0, size=(200, 8))
    labels = (xs[:, 0] - xs[:, 3] + rng.normal(0, 2, 200) > 0).astype(int)
    head = fit_head(xs, labels, l2=1.0)
    weights, bias = unstandardised(head)
    np.testing.assert_allclose(xs @ weights + bias, head.log_odds(xs), rtol=1e-9, atol=1e-9)


def test_a_prompt_key_is_the_conversation_and_reads_back_as_it() -> None:
    for item in DEV[:20]:
        back = GenerateRequest.model_validate(
            {"request_id": "x", **json.loads(prompt_key(item.request))}
        )
        assert back.messages == item.request.messages and back.prompt == item.request.prompt
