"""The router's second look: when the first look defers, and how the look scores.

Heads here are built by hand (a zero weight vector and a chosen bias) so that each test
states the decision it expects; the shipped head's quality is the lab's to measure
(``python -m router_lab.second``, docs/router.md). The first look is the real one:
the bundled weights and token head over a real runner's token ids.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from pydantic import ValidationError

from edge_agent.engines.local import LocalEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.router import Reason, Route, Router, RouterConfig, extract_features
from edge_agent.router.features import PromptFeatures
from edge_agent.router.model import ELABORATION_FLOOR, logit
from edge_agent.router.second import PromptHead, SecondLook, load_prompt_head
from edge_agent.router.table import blend, file_sha256
from edge_agent.serving import ServingPipeline
from edge_agent.settings import EdgeSettings
from shared.messages import ChatMessage, GenerateRequest
from tests.edge_agent.api.harness import N_CTX, loaded_engine

module_loop = pytest.mark.asyncio(loop_scope="module")

REQUEST = GenerateRequest(
    request_id="r", messages=(ChatMessage(role="user", content="How do magnets work?"),)
)


def _head(
    *, bias: float = 0.0, sure: float = 1.0, threshold: float = 0.5, dim: int = 576
) -> PromptHead:
    return PromptHead("0" * 64, np.zeros(dim), bias, sure=sure, threshold=threshold)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pipeline() -> AsyncIterator[ServingPipeline]:
    async with loaded_engine() as local:
        pipeline = ServingPipeline.from_settings(
            EdgeSettings(n_ctx=N_CTX), local=local, cloud=None, metrics=EdgeMetrics()
        )
        await pipeline.load_token_head()
        yield pipeline


def _router(pipeline: ServingPipeline) -> Router:
    router = pipeline._router
    assert isinstance(router, Router) and router.token_head is not None
    return router


def _features(pipeline: ServingPipeline) -> PromptFeatures:
    return pipeline._with_ask_tokens(REQUEST, extract_features(REQUEST))


@module_loop
async def test_the_bundled_head_is_for_the_bundled_gguf_and_no_other(
    pipeline: ServingPipeline, tmp_path: Path
) -> None:
    router = _router(pipeline)
    head = router.prompt_head
    assert head is not None  # attached with the token head, for this GGUF
    assert head.gguf_sha256 == file_sha256(pipeline.local.model_path)
    blocks = len(head.tensor.split(","))  # 576 weights per block it reads
    assert head.weights.shape == (576 * blocks,) and 0 < head.threshold < 1 and 0 < head.sure <= 1
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + bytes(64))
    assert load_prompt_head(other) is None


@module_loop
async def test_a_first_look_short_of_sure_defers_to_the_second(pipeline: ServingPipeline) -> None:
    router = _router(pipeline)
    features = _features(pipeline)
    shipped = router.prompt_head
    try:
        router.attach_prompt_head(_head(sure=1.0))
        plan = router.decide(features, requested="auto", cloud_available=True)
        assert plan.route is Route.LOCAL and plan.reason is Reason.SIMPLE
        assert plan.second_look is not None and plan.p_cloud is not None

        router.attach_prompt_head(_head(sure=plan.p_cloud))  # sure of the cloud now
        sure = router.decide(features, requested="auto", cloud_available=True)
        assert sure.route is Route.CLOUD and sure.second_look is None

        router.attach_prompt_head(_head(sure=1.0))
        busy = router.decide(features, requested="auto", cloud_available=True, local_busy=1)
        assert busy.second_look is None  # it would wait behind another request: first look

        forced = router.decide(features, requested="local", cloud_available=True)
        assert forced.second_look is None
        no_cloud = router.decide(features, requested="auto", cloud_available=False)
        assert no_cloud.second_look is None
    finally:
        router.attach_prompt_head(shipped)


def _scores(router: Router, features: PromptFeatures) -> tuple[float, float]:
    """The features' probability and the token head's log-odds of ``features``."""
    assert router.token_head is not None and features.ask_tokens is not None
    head = router.token_head.log_odds(
        features.ask_tokens, features.focus_tokens, features.focus_long
    )
    return router.score(features), head


def _lower(router: Router, features: PromptFeatures) -> tuple[float, float]:
    """Each of ``_scores``, the lower of the conversation's and its last ask's alone."""
    assert features.last_ask is not None
    (p, head), (p_alone, head_alone) = _scores(router, features), _scores(router, features.last_ask)
    return min(p, p_alone), min(head, head_alone)


def _conversation(ask: str, answer: str, follow_up: str) -> GenerateRequest:
    return GenerateRequest(
        request_id="c",
        messages=(
            ChatMessage(role="user", content=ask),
            ChatMessage(role="assistant", content=answer),
            ChatMessage(role="user", content=follow_up),
        ),
    )


FOLLOW_UP = _conversation(
    "Explain how a transformer model works, in detail.",
    "A transformer is a neural network. " * 40,
    "why is that?",
)


@module_loop
async def test_an_elaborating_follow_up_is_left_to_the_look_not_floored(
    pipeline: ServingPipeline,
) -> None:
    """The elaboration rule floors the first look at 0.9; where a look follows, the
    model's reading of the conversation decides instead (docs/router.md, round 6)."""
    router = _router(pipeline)
    features = pipeline._with_ask_tokens(FOLLOW_UP, extract_features(FOLLOW_UP))
    assert features.elaboration
    shipped = router.prompt_head
    try:
        router.attach_prompt_head(_head(sure=0.95))
        p, head = _scores(router, features)
        unfloored = blend(p, head, elaboration=False)
        assert unfloored < 0.95  # else the first look is sure and no look follows
        plan = router.decide(features, requested="auto", cloud_available=True)
        assert plan.second_look is not None
        assert plan.p_cloud == blend(*_lower(router, features), elaboration=False)
        busy = router.decide(features, requested="auto", cloud_available=True, local_busy=1)
        assert busy.route is Route.CLOUD  # no look: the rule holds
        assert busy.p_cloud == max(unfloored, ELABORATION_FLOOR)
    finally:
        router.attach_prompt_head(shipped)


EASY_AFTER_HARD = _conversation(
    "Prove that there are infinitely many primes.",
    "Suppose there were finitely many primes. " * 20,
    "thanks! and what is a prime, in one line?",
)


@module_loop
async def test_the_look_reads_a_conversations_last_ask_alone_as_well(
    pipeline: ServingPipeline,
) -> None:
    """Where a second look follows, the first look's two scores are each the lower of
    the conversation's and its last ask's alone (the look itself reads the whole
    conversation); without a look, the conversation alone is scored, as before."""
    router = _router(pipeline)
    features = pipeline._with_ask_tokens(EASY_AFTER_HARD, extract_features(EASY_AFTER_HARD))
    alone = features.last_ask
    assert alone is not None and alone.ask_tokens is not None and features.history_hard
    whole, lower = _scores(router, features), _lower(router, features)
    assert lower[0] < whole[0] and lower[1] < whole[1], "the easy ask alone reads as easier"
    shipped = router.prompt_head
    try:
        router.attach_prompt_head(_head(sure=1.0))
        plan = router.decide(features, requested="auto", cloud_available=True)
        assert plan.second_look is not None
        assert plan.second_look.features_log_odds == logit(lower[0])
        assert plan.second_look.token_log_odds == lower[1]
        assert plan.p_cloud == blend(*lower, elaboration=False)
        busy = router.decide(features, requested="auto", cloud_available=True, local_busy=1)
        assert busy.second_look is None
        assert busy.p_cloud == blend(*whole, elaboration=features.elaboration)
    finally:
        router.attach_prompt_head(shipped)


async def _pipeline_with(local: LocalEngine, settings: Mapping[str, object]) -> ServingPipeline:
    """A pipeline over ``local`` with these edge settings, its heads loaded."""
    pipeline = ServingPipeline.from_settings(
        EdgeSettings(n_ctx=N_CTX, **settings),  # type: ignore[arg-type]
        local=local,
        cloud=None,
        metrics=EdgeMetrics(),
    )
    await pipeline.load_token_head()
    return pipeline


@module_loop
@pytest.mark.parametrize(
    "settings",
    [{"router_second_look": False}, {"router_second_look_max_prompt_tokens": 3}],
    ids=["off", "prompt-longer-than-the-limit"],
)
async def test_the_settings_turn_the_second_look_off(settings: dict[str, object]) -> None:
    async with loaded_engine() as local:
        pipeline = await _pipeline_with(local, settings)
        router = _router(pipeline)
        router.attach_prompt_head(_head())
        features = _features(pipeline)
        assert features.prompt_tokens > 3
        plan = router.decide(features, requested="auto", cloud_available=True)
        assert plan.second_look is None and plan.route is Route.LOCAL


@module_loop
async def test_the_looks_threshold_is_a_setting(pipeline: ServingPipeline) -> None:
    """``--router-second-look-threshold`` moves the look's threshold; the shipped head's
    stands where it is unset, and ``--router-cloud-threshold`` leaves it alone."""
    shipped = _router(pipeline).prompt_head
    assert shipped is not None and shipped.threshold != 0.9
    async with loaded_engine() as local:
        for settings, expected in (
            ({"router_second_look_threshold": 0.9}, 0.9),
            ({"router_cloud_threshold": 0.9}, shipped.threshold),
        ):
            router = _router(await _pipeline_with(local, settings))
            assert router.prompt_head is not None
            assert router.prompt_head.threshold == expected
            assert np.array_equal(router.prompt_head.weights, shipped.weights)
            look = SecondLook(router.prompt_head, 0.0, 0.0)  # as ``decide`` makes it
            assert look.escalates(expected) and not look.escalates(expected - 1e-6)
    with pytest.raises(ValueError, match="second_look_threshold"):
        RouterConfig(second_look_threshold=1.0)
    with pytest.raises(ValidationError, match="router_second_look_threshold"):
        EdgeSettings(router_second_look_threshold=0)


def test_the_look_blends_three_log_odds_the_heads_weighted() -> None:
    state = np.linspace(-1, 1, 576, dtype=np.float32)
    head = PromptHead("0" * 64, np.full(576, 0.01), -0.5, sure=0.7, threshold=0.4)
    look = SecondLook(head, features_log_odds=1.2, token_log_odds=-0.3)
    z = (1.2 - 0.3 + float(np.dot(head.weights, state)) - 0.5) / 3
    assert look.score(state) == pytest.approx(1 / (1 + math.exp(-z)))
    assert look.escalates(0.4) and not look.escalates(0.39)
    heavy = PromptHead("0" * 64, head.weights, -0.5, sure=0.7, threshold=0.4, weight=3.0)
    z = (1.2 - 0.3 + 3 * (float(np.dot(head.weights, state)) - 0.5)) / 5
    assert SecondLook(heavy, 1.2, -0.3).score(state) == pytest.approx(1 / (1 + math.exp(-z)))
    assert PromptHead.from_json(heavy.to_json()).weight == 3.0
    with pytest.raises(ValueError, match="weight"):
        PromptHead("0" * 64, head.weights, 0.0, sure=0.7, threshold=0.4, weight=0.0)


def test_a_head_refuses_a_state_of_another_width_and_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        _head().log_odds(np.zeros(960, dtype=np.float32))
    with pytest.raises(ValueError, match="thresholds"):
        _head(threshold=1.0)
    head = _head(bias=0.25)
    back = PromptHead.from_json(head.to_json())
    assert np.array_equal(back.weights, head.weights)
    assert (back.bias, back.sure, back.threshold) == (0.25, head.sure, head.threshold)


def test_a_head_names_the_state_it_reads_and_older_heads_read_the_final_one() -> None:
    head = PromptHead("0" * 64, np.zeros(576), 0.0, sure=1.0, threshold=0.5, tensor="l_out-20")
    assert PromptHead.from_json(head.to_json()).tensor == "l_out-20"
    older = {k: v for k, v in json.loads(_head().to_json()).items() if k != "tensor"}
    assert PromptHead.from_json(json.dumps(older)).tensor == "result_norm"


@module_loop
async def test_the_runner_reads_the_state_the_bundled_head_names(
    pipeline: ServingPipeline,
) -> None:
    head = _router(pipeline).prompt_head
    assert head is not None
    runner = pipeline.local._runner
    assert runner.state_read == "tap"
    assert runner._tap is not None and runner._tap.tensor == head.tensor
