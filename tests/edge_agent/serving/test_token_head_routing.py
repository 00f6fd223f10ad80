"""An edge over the bundled model routes ``auto`` requests on features and token head.

The real bundled GGUF, loaded by a real runner: the pipeline's router gets the shipped
token head (its SHA-256 matches), the runner's tokeniser supplies the routing text's and
the focus text's ids, and the decision's score is the blend of both. Before the model
loads, and for a router without a head (another weights file), the features decide
alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import edge_agent.router as package
from edge_agent.engines.local import LocalEngine
from edge_agent.metrics import EdgeMetrics
from edge_agent.router import Router, extract_features
from edge_agent.router.model import BUNDLED_MODEL_FILE
from edge_agent.router.table import blend, focus_text, routing_text
from edge_agent.serving import ServingPipeline
from edge_agent.settings import EdgeSettings
from shared.messages import ChatMessage, GenerateRequest
from tests.edge_agent.api.harness import N_CTX, llama_runner, loaded_engine

REQUEST = GenerateRequest(
    request_id="r",
    messages=(
        ChatMessage(role="user", content="what is inflation?"),
        ChatMessage(
            role="assistant",
            content="Inflation is the sustained rise of the general price level, measured "
            "by indices such as the consumer price index.",
        ),
        ChatMessage(role="user", content="thanks! what does 'index' mean here"),
    ),
)


def _pipeline(local: object, **settings: object) -> ServingPipeline:
    return ServingPipeline.from_settings(
        EdgeSettings(**{"n_ctx": N_CTX, **settings}),  # type: ignore[arg-type]
        local=local,  # type: ignore[arg-type]
        cloud=None,
        metrics=EdgeMetrics(),
    )


async def test_auto_requests_carry_the_local_tokenisers_ids_and_are_scored_blended() -> None:
    async with loaded_engine() as local:
        pipeline = _pipeline(local)
        router = pipeline._router
        assert isinstance(router, Router) and router.token_head is None  # not yet checked
        await pipeline.load_token_head()  # as the agent does once its model has loaded
        assert router.token_head is not None
        ids = local.tokenize(routing_text(REQUEST))
        assert ids  # the runner's vocabulary, no BOS
        features = pipeline._with_ask_tokens(REQUEST, extract_features(REQUEST))
        assert features.ask_tokens == tuple(ids)
        focus, long = focus_text(REQUEST)
        focus_ids = local.tokenize(focus)
        assert router.token_head.reads_focus and focus_ids
        assert (features.focus_tokens, features.focus_long) == (tuple(focus_ids), long)
        # A busy local model: no second look, so the first look's blend decides (where a
        # look follows, a conversation's last ask is read alone too: test_second).
        decision = router.decide(features, requested="auto", cloud_available=True, local_busy=1)
        assert decision.second_look is None
        p_features = router.score(extract_features(REQUEST))
        head = router.token_head.log_odds(ids, focus_ids, long)
        assert decision.p_cloud == blend(p_features, head, features.elaboration)


async def test_features_alone_before_the_model_loads_and_with_other_weights() -> None:
    local = LocalEngine(llama_runner())
    pipeline = _pipeline(local)
    features = pipeline._with_ask_tokens(REQUEST, extract_features(REQUEST))
    assert features.ask_tokens is None  # nothing to tokenise with yet: features decide

    weights = Path(package.__file__).with_name(BUNDLED_MODEL_FILE)
    other = _pipeline(local, router_model=weights)
    await other.load_token_head()
    router = other._router
    assert isinstance(router, Router) and router.token_head is None
    plain = replace(extract_features(REQUEST), ask_tokens=None)
    assert other._with_ask_tokens(REQUEST, plain) is plain
