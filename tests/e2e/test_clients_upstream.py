"""Structured output and tool calls through a worker fronting a real OpenAI-compatible
engine (``python -m llama_cpp.server``, standing where vLLM or llama-server would): the
worker passes the constraint on as ``response_format`` and the engine's own grammar
enforces it. The official SDK, unchanged, on the cloud route; answers validate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from openai import OpenAI

from devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_clients import ASK_CITY, ASK_WEATHER, TIME, WEATHER, City, valid_call
from tests.e2e.test_openai_upstream import worker_args
from tests.support.upstream import upstream_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("clients-upstream")
    with (
        upstream_server(logs) as engine,
        running_stack(logs, worker_args=worker_args(engine)) as stack,
    ):
        yield stack


def test_response_format_is_enforced_by_the_engine(fronted: Stack) -> None:
    sdk = OpenAI(base_url=f"{fronted.edge_url}/v1", api_key="unused", max_retries=0)
    completion = sdk.chat.completions.parse(
        model="cloud", messages=ASK_CITY, response_format=City, max_tokens=80, temperature=0
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, City)
    jsonschema.validate(json.loads(message.content or ""), City.model_json_schema())


def test_a_named_tool_call_through_the_engine(fronted: Stack) -> None:
    sdk = OpenAI(base_url=f"{fronted.edge_url}/v1", api_key="unused", max_retries=0)
    tools: Any = [WEATHER, TIME]
    reply = sdk.chat.completions.create(
        model="cloud",
        messages=ASK_WEATHER,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=80,
        extra_body={"top_k": 20, "repeat_penalty": 1.1},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call: Any = (choice.message.tool_calls or [])[0]
    valid_call(call.function.name, call.function.arguments, WEATHER)


def test_logprobs_come_from_the_engine(fronted: Stack) -> None:
    sdk = OpenAI(base_url=f"{fronted.edge_url}/v1", api_key="unused", max_retries=0)
    reply = sdk.chat.completions.create(
        model="cloud", messages=ASK_WEATHER, max_tokens=4, logprobs=True, top_logprobs=2
    )
    scored = reply.choices[0].logprobs
    assert scored is not None and scored.content
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in scored.content)
