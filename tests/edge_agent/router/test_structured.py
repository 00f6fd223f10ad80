"""The structured-output policy: JSON-constrained requests go to the cloud on ``auto``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.router import (
    Decision,
    HeuristicRouter,
    Reason,
    Route,
    Router,
    RouterConfig,
    extract_features,
)
from edge_agent.router.model import load_model
from edge_agent.settings import EdgeSettings
from shared.messages import ChatMessage, GenerateRequest, OutputFormat

CONFIG = RouterConfig()


def request(output: OutputFormat | None) -> GenerateRequest:
    hello = (ChatMessage(role="user", content="Hello there"),)
    return GenerateRequest(request_id="r", messages=hello, output=output)


def test_features_see_the_constraint() -> None:
    assert extract_features(request(OutputFormat())).structured
    assert not extract_features(request(None)).structured


@pytest.mark.parametrize("router", [HeuristicRouter(CONFIG), Router(CONFIG, load_model())])
def test_structured_requests_go_to_the_cloud_and_say_why(router: HeuristicRouter | Router) -> None:
    features = extract_features(request(OutputFormat(schema_text='{"type":"object"}')))
    decision = router.decide(features, requested="auto", cloud_available=True)
    assert decision == Decision(
        Route.CLOUD, Reason.STRUCTURED_OUTPUT, fallback=Route.LOCAL, p_cloud=None
    )
    plain = router.decide(extract_features(request(None)), requested="auto", cloud_available=True)
    assert plain.reason is not Reason.STRUCTURED_OUTPUT


def test_possibility_policies_still_win() -> None:
    router = HeuristicRouter(CONFIG)
    features = extract_features(request(OutputFormat()))
    assert router.decide(features, requested="local", cloud_available=True).reason is (
        Reason.FORCED_LOCAL
    )
    assert router.decide(features, requested="auto", cloud_available=False).reason is (
        Reason.CLOUD_UNAVAILABLE
    )
    spent = router.decide(features, requested="auto", cloud_available=True, cloud_budget_left=False)
    assert spent.reason is Reason.BUDGET_EXHAUSTED


def test_the_policy_can_be_turned_off() -> None:
    config = RouterConfig.from_settings(EdgeSettings(structured_to_cloud=False))
    assert not config.structured_to_cloud
    features = replace(extract_features(request(OutputFormat())), structured=True)
    decision = HeuristicRouter(config).decide(features, requested="auto", cloud_available=True)
    assert decision == Decision(Route.LOCAL, Reason.SIMPLE)
