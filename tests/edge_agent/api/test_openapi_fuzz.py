"""Hostile input: schemathesis fuzzes the live API from its own ``/openapi.json``.

Every operation the document lists gets schema-valid (positive) requests, and every one
that takes input also schema-violating (negative) ones: wrong types, missing fields,
out-of-range numbers, odd ``X-Tandem-Route`` values. Streaming requests are included.
No answer may be a 5xx, and every answer must match the document: status code, content
type, headers and body (each SSE event included; schemathesis cannot parse NDJSON, so
Ollama's streams are checked for everything but their lines).

The cases come from schemathesis' Hypothesis strategies (``as_strategy``), driven here,
rather than from ``schemathesis.pytest.from_fixture``: that loader relies on a pytest
internal (``Item._nodeid``) which the pytest this project uses no longer has.

The agent is the real app over the real bundled model, with no cloud. Two things keep
the run short on two cores: each request may generate at most ``MAX_NEW_TOKENS`` (see
``cap_generation``), and each operation gets at most ``MAX_EXAMPLES`` cases per mode.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeAlias

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from edge_agent.api.openai_models import MAX_TOKENS_LIMIT
from edge_agent.api.openapi import OPERATIONS
from tests.edge_agent.api.harness import Agent, loaded_engine, running_agent

pytestmark = pytest.mark.fuzz

Case: TypeAlias = schemathesis.Case[APIOperation[Any, Any, Any, Any]]

MAX_EXAMPLES = 50
"""Generated cases per operation and mode (fewer where the schema allows fewer)."""
MAX_NEW_TOKENS = 4
"""Tokens a fuzzed request may generate: enough to go through streaming and finish
reasons, few enough that hundreds of generations fit in well under a minute."""
REQUEST_TIMEOUT_S = 60.0
GENERATIONS = frozenset({"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"})
"""The operations that generate text (others, embeddings and probes, take no token
limit: adding one would be an unknown field, which they refuse)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@contextmanager
def agent_in_thread() -> Iterator[Agent]:
    """The harness's agent, served by an event loop of its own in another thread:
    schemathesis calls it synchronously (``requests``) from the test's thread, which
    would otherwise block the loop that has to answer."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-agent", daemon=True)
    thread.start()
    stack = AsyncExitStack()

    async def start() -> Agent:
        local = await stack.enter_async_context(loaded_engine())
        return await stack.enter_async_context(running_agent(local))

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=120)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(scope="module")
def fuzzed_agent() -> Iterator[Agent]:
    with agent_in_thread() as agent:
        yield agent


@pytest.fixture(scope="module")
def api_schema(fuzzed_agent: Agent) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_agent.url}/openapi.json")


def _as_count(value: object) -> int | None:
    """``value`` as the integer pydantic would read it as (lax mode), if it would."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def _cap(body: dict[str, Any], key: str, *, below_one_is_unlimited: bool = False) -> None:
    """Lower an accepted token limit to ``MAX_NEW_TOKENS``, and supply one if unset.

    Limits the API refuses (past ``MAX_TOKENS_LIMIT``, wrong types) are left alone:
    they are what the fuzzing is for, and they never reach the model.
    """
    count = _as_count(body.get(key))
    unset = body.get(key) is None
    accepted = count is not None and (
        MAX_NEW_TOKENS < count <= MAX_TOKENS_LIMIT or (below_one_is_unlimited and count < 1)
    )
    if unset or accepted:
        body[key] = MAX_NEW_TOKENS


def cap_generation(case: Case) -> None:
    """Keep the real model's work per request small, whatever the fuzzer asked for."""
    body = case.body
    path = case.operation.path
    if not isinstance(body, dict) or path not in GENERATIONS:
        return
    if path.startswith("/v1/"):
        # Chat reads max_completion_tokens first, then max_tokens; both are capped.
        if body.get("max_completion_tokens") is not None:
            _cap(body, "max_completion_tokens")
        _cap(body, "max_tokens")
    elif path.startswith("/api/"):
        options = body.setdefault("options", {})
        if isinstance(options, dict):
            # Ollama: num_predict <= 0 means "until the context is full".
            _cap(options, "num_predict", below_one_is_unlimited=True)


def _inputs(method: str, path: str) -> list[tuple[str, str, GenerationMode]]:
    """Negative cases only where there is an input to violate (a body, a header)."""
    modes = [GenerationMode.POSITIVE]
    if OPERATIONS[(method, path)].request is not None:
        modes.append(GenerationMode.NEGATIVE)
    return [(method, path, mode) for mode in modes]


@pytest.mark.parametrize(
    ("method", "path", "mode"), [i for key in sorted(OPERATIONS) for i in _inputs(*key)]
)
def test_no_server_errors_and_answers_match_the_document(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    statuses: Counter[int] = Counter()

    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Case) -> None:
        cap_generation(case)
        response = case.call_and_validate(checks=CHECKS, timeout=REQUEST_TIMEOUT_S)
        statuses[response.status_code] += 1

    fuzz()
    assert statuses, "no request was sent"
    if mode is GenerationMode.POSITIVE and OPERATIONS[(method, path)].request is not None:
        # Guards the fuzzing itself: valid bodies must get as far as the model.
        assert statuses[200], f"no valid body was served: {dict(statuses)}"
