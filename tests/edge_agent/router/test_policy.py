"""The routing policy: a pure function of features, requested route and cloud availability."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.router import Decision, Reason, Route, Router, RouterConfig
from edge_agent.router.features import PromptFeatures
from edge_agent.settings import EdgeSettings

CONFIG = RouterConfig(auto_local_max_prompt_tokens=400, auto_local_max_tokens=512, local_n_ctx=2048)
SIMPLE = PromptFeatures(
    prompt_tokens=20,
    turns=1,
    max_tokens=None,
    questions=1,
    has_code=False,
    has_math=False,
    has_reasoning=False,
)


def decide(
    features: PromptFeatures = SIMPLE, *, requested: str = "auto", cloud: bool = True
) -> Decision:
    return Router(CONFIG).decide(features, requested=requested, cloud_available=cloud)  # type: ignore[arg-type]


def test_simple_stays_local() -> None:
    assert decide() == Decision(Route.LOCAL, Reason.SIMPLE)


@pytest.mark.parametrize("cloud", [True, False])
def test_forced_routes_win_over_everything(cloud: bool) -> None:
    hard = replace(SIMPLE, prompt_tokens=5000, has_code=True)
    assert decide(hard, requested="local", cloud=cloud) == Decision(
        Route.LOCAL, Reason.FORCED_LOCAL
    )
    # forced cloud is honoured even without a cloud: the caller answers 503
    assert decide(SIMPLE, requested="cloud", cloud=cloud) == Decision(
        Route.CLOUD, Reason.FORCED_CLOUD
    )


def test_auto_without_cloud_is_local() -> None:
    hard = replace(SIMPLE, prompt_tokens=5000, has_code=True, has_math=True)
    assert decide(hard, cloud=False) == Decision(Route.LOCAL, Reason.CLOUD_UNAVAILABLE)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"prompt_tokens": 2048}, Reason.CONTEXT_TOO_LONG),
        ({"prompt_tokens": 401}, Reason.LONG_PROMPT),
        ({"max_tokens": 513}, Reason.LONG_OUTPUT),
        ({"has_code": True}, Reason.CODE),
        ({"has_math": True}, Reason.MATH),
        ({"has_reasoning": True}, Reason.REASONING),
    ],
)
def test_each_heuristic_sends_to_cloud(changes: dict[str, object], reason: Reason) -> None:
    assert decide(replace(SIMPLE, **changes)) == Decision(Route.CLOUD, reason)  # type: ignore[arg-type]


def test_thresholds_are_inclusive_for_local() -> None:
    at_limit = replace(SIMPLE, prompt_tokens=400, max_tokens=512)
    assert decide(at_limit).route is Route.LOCAL


def test_most_certain_reason_first() -> None:
    everything = replace(
        SIMPLE,
        prompt_tokens=3000,
        max_tokens=1000,
        has_code=True,
        has_math=True,
        has_reasoning=True,
    )
    assert decide(everything).reason is Reason.CONTEXT_TOO_LONG
    assert decide(replace(everything, prompt_tokens=10)).reason is Reason.LONG_OUTPUT
    assert decide(replace(everything, prompt_tokens=10, max_tokens=None)).reason is Reason.CODE


def test_reasons_are_a_small_kebab_set() -> None:
    values = {r.value for r in Reason}
    assert len(values) == 10
    assert all(v == v.lower() and " " not in v and "_" not in v for v in values)


def test_config_from_settings() -> None:
    settings = EdgeSettings(auto_local_max_prompt_tokens=10, auto_local_max_tokens=20, n_ctx=4096)
    assert RouterConfig.from_settings(settings) == RouterConfig(10, 20, 4096)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RouterConfig(auto_local_max_prompt_tokens=-1)
    with pytest.raises(ValueError):
        RouterConfig(local_n_ctx=0)
