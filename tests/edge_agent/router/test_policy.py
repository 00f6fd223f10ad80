"""The routing policy: a pure function of features, requested route and cloud availability."""

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
    load_model,
)
from edge_agent.router.features import PromptFeatures
from edge_agent.router.markers import bundled_lexicon
from edge_agent.router.model import ELABORATION_FLOOR, Logistic, RouterModel
from edge_agent.router.vector import FEATURE_NAMES
from edge_agent.settings import EdgeSettings
from shared.messages import ChatMessage, GenerateRequest

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
    return HeuristicRouter(CONFIG).decide(features, requested=requested, cloud_available=cloud)  # type: ignore[arg-type]


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
    escalated = decide(replace(SIMPLE, **changes))  # type: ignore[arg-type]
    assert escalated == Decision(Route.CLOUD, reason, fallback=Route.LOCAL)


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
    # 18 until the cascade (confident, low-confidence) was removed; 17 with local-loading;
    # 18 with second-look
    assert len(values) == 18
    assert all(v == v.lower() and " " not in v and "_" not in v for v in values)


def test_config_from_settings() -> None:
    settings = EdgeSettings(auto_local_max_prompt_tokens=10, auto_local_max_tokens=20, n_ctx=4096)
    config = RouterConfig.from_settings(settings)
    assert (config.auto_local_max_prompt_tokens, config.auto_local_max_tokens) == (10, 20)
    assert config.local_n_ctx == 4096
    learned = RouterConfig.from_settings(EdgeSettings(router_cloud_threshold=0.3))
    assert Router(learned).threshold == 0.3


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RouterConfig(auto_local_max_prompt_tokens=-1)
    with pytest.raises(ValueError):
        RouterConfig(local_n_ctx=0)


@pytest.mark.parametrize("router", [HeuristicRouter(CONFIG), Router(CONFIG, load_model())])
def test_budget_and_overload_policies(router: HeuristicRouter | Router) -> None:
    hard = replace(SIMPLE, has_code=True)
    spent = router.decide(hard, requested="auto", cloud_available=True, cloud_budget_left=False)
    assert spent == Decision(Route.LOCAL, Reason.BUDGET_EXHAUSTED)
    # the budget caps auto only: a forced cloud request is the client's explicit choice
    forced = router.decide(hard, requested="cloud", cloud_available=True, cloud_budget_left=False)
    assert forced.route is Route.CLOUD
    busy = router.decide(SIMPLE, requested="auto", cloud_available=True, local_busy=5)
    assert busy == Decision(Route.CLOUD, Reason.LOCAL_OVERLOADED, fallback=Route.LOCAL)
    assert router.decide(SIMPLE, requested="auto", cloud_available=True, local_busy=4).route is (
        Route.LOCAL
    )


@pytest.mark.parametrize("router", [HeuristicRouter(CONFIG), Router(CONFIG, load_model())])
def test_auto_goes_to_the_cloud_while_the_local_model_loads(
    router: HeuristicRouter | Router,
) -> None:
    loading = router.decide(SIMPLE, requested="auto", cloud_available=True, local_ready=False)
    assert loading == Decision(Route.CLOUD, Reason.LOCAL_LOADING, fallback=Route.LOCAL)
    # Only what the cloud may take: no cloud, a spent budget or a forced route still decide.
    for decision, reason in (
        (router.decide(SIMPLE, requested="auto", cloud_available=False, local_ready=False),
         Reason.CLOUD_UNAVAILABLE),
        (router.decide(SIMPLE, requested="auto", cloud_available=True, cloud_budget_left=False,
                       local_ready=False), Reason.BUDGET_EXHAUSTED),
        (router.decide(SIMPLE, requested="local", cloud_available=True, local_ready=False),
         Reason.FORCED_LOCAL),
    ):  # fmt: skip
        assert decision == Decision(Route.LOCAL, reason)


def test_overload_can_be_turned_off() -> None:
    router = HeuristicRouter(replace(CONFIG, local_overload_queue=None))
    assert router.decide(SIMPLE, requested="auto", cloud_available=True, local_busy=99).route is (
        Route.LOCAL
    )


def ask(text: str) -> PromptFeatures:
    message = ChatMessage(role="user", content=text)
    return extract_features(GenerateRequest(request_id="r", messages=(message,)))


LEARNED = Router(CONFIG, load_model())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # also long-form writing ("write a"): the more specific content names the reason
        ("Write a Python function that merges overlapping intervals, with pytest tests.", "code"),
        (
            "My landlord kept my whole deposit for normal wear. Is that legal in Ohio?",
            "expert-domain",
        ),
        (
            "My landlord kept my whole $2,400 deposit for normal carpet wear. Is that legal "
            "in Ohio, and what should my demand letter cite?",
            "expert-domain",
        ),
        ("Prove that the square root of 2 is irrational.", "math"),
        ("Write a 1200-word essay on the history of the printing press.", "long-output"),
    ],
)
def test_learned_router_escalates_hard_prompts_and_says_why(text: str, reason: str) -> None:
    decision = LEARNED.decide(ask(text), requested="auto", cloud_available=True)
    assert decision.route is Route.CLOUD
    assert decision.reason.value == reason
    assert decision.p_cloud is not None and decision.p_cloud >= LEARNED.threshold


@pytest.mark.parametrize(
    "text",
    ["hi there!", "thanks, that really helped!", "translate 'good morning' to Spanish"],
)
def test_learned_router_keeps_easy_prompts_local(text: str) -> None:
    decision = LEARNED.decide(ask(text), requested="auto", cloud_available=True)
    assert decision == Decision(Route.LOCAL, Reason.SIMPLE, p_cloud=decision.p_cloud)
    assert decision.p_cloud is not None and decision.p_cloud < LEARNED.threshold / 2


def test_threshold_override() -> None:
    features = ask("Give me three tips for sleeping better.")
    p = LEARNED.score(features)
    always_cloud = Router(replace(CONFIG, cloud_threshold=max(p / 2, 1e-3)), load_model())
    assert always_cloud.decide(features, requested="auto", cloud_available=True).route is (
        Route.CLOUD
    )
    just_under = Router(replace(CONFIG, cloud_threshold=min(p + 0.01, 0.99)), load_model())
    decision = just_under.decide(features, requested="auto", cloud_available=True)
    assert (decision.route, decision.reason) == (Route.LOCAL, Reason.SIMPLE)


def test_without_content_markers_only_present_features_explain_an_escalation() -> None:
    """A short message under a negative length weight adds to the log-odds as much as a
    long one under a positive weight; it must not be called ``long-prompt``."""
    names = FEATURE_NAMES
    weights = [0.0] * len(names)
    means = [0.0] * len(names)
    weights[names.index("log_last_user_tokens")] = -2.0
    means[names.index("log_last_user_tokens")] = 3.0
    weights[names.index("numbers")] = 1.0
    logistic = Logistic(tuple(weights), tuple(means), (1.0,) * len(names), 0.0)
    model = RouterModel(names, logistic, 0.5, bundled_lexicon().sha256)  # no trees: it scores
    features = replace(SIMPLE, prompt_tokens=5, questions=0, last_user_tokens=1, numbers=3)
    decision = Router(CONFIG, model).decide(features, requested="auto", cloud_available=True)
    assert decision.route is Route.CLOUD
    assert decision.reason.value == "math"


def test_token_head_blends_only_when_the_request_carries_token_ids() -> None:
    """With a head, a request with ``ask_tokens`` is scored by the blend and compared with
    the head's threshold; without token ids (another GGUF, the model still loading) the
    features decide against the weights' own threshold."""
    from edge_agent.router.table import TokenHead, blend

    features = extract_features(
        GenerateRequest(
            request_id="r", messages=(ChatMessage(role="user", content="what's 2 + 2?"),)
        )
    )
    plain = Router(CONFIG)
    p = plain.score(features)
    # A head that reads token 1 as certainly hard, token 0 as certainly easy.
    head = TokenHead(gguf_sha256="0" * 64, weights=[-30.0, 30.0], bias=0.0, threshold=0.5)
    router = Router(CONFIG, plain.model, head)
    alone = router.decide(features, requested="auto", cloud_available=True)
    assert alone == plain.decide(features, requested="auto", cloud_available=True)
    hard = router.decide(replace(features, ask_tokens=(1,)), requested="auto", cloud_available=True)
    assert hard.route is Route.CLOUD
    assert hard.p_cloud == pytest.approx(blend(p, 30.0, False))
    easy = router.decide(replace(features, ask_tokens=(0,)), requested="auto", cloud_available=True)
    assert easy.route is Route.LOCAL
    assert router.blend_threshold == 0.5 and router.threshold == plain.threshold


def test_an_elaborating_follow_up_goes_to_the_cloud() -> None:
    """ "why though?" after an explanation is the hard question continued (the rule holds
    with or without the head)."""
    features = extract_features(
        GenerateRequest(
            request_id="r",
            messages=(
                ChatMessage(role="user", content="what is inflation?"),
                ChatMessage(
                    role="assistant",
                    content="Inflation is the sustained rise of the general price level in an "
                    "economy, measured by indices such as the consumer price index.",
                ),
                ChatMessage(role="user", content="so why do higher interest rates slow it?"),
            ),
        )
    )
    assert features.elaboration
    decision = Router(CONFIG).decide(features, requested="auto", cloud_available=True)
    assert decision.route is Route.CLOUD
    assert decision.p_cloud is not None and decision.p_cloud >= ELABORATION_FLOOR
    assert decision.reason not in (Reason.HARD, Reason.SIMPLE)
