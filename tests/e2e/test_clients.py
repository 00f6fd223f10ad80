"""Structured output, tool calls and sampling options through the clients people use,
unchanged: the ``openai`` SDK (sync, async, streaming, ``parse`` with a pydantic model),
the ``ollama`` client and LangChain's ``ChatOpenAI``, on both routes (``edge``: the
local model; ``cloud``: a real worker over WebRTC), with the real bundled model.

A 135M model picks odd values; what is asserted is what the constraint guarantees:
structured answers parse and validate against their schema, named or required tool
calls parse and their arguments validate, and fields Tandem cannot honour are refused
by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
import ollama
import openai
import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, Field, SecretStr

from devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.support.model import model_path

pytestmark = pytest.mark.e2e

ROUTES = ["edge", "cloud"]
"""Model names forcing the local model and the cloud worker."""


class City(BaseModel):
    name: str = Field(max_length=24)
    country: Literal["France", "Italy", "Spain"]
    capital: bool


WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 24}},
            "required": ["zone"],
        },
    },
}
ASK_WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
ASK_CITY: Any = [{"role": "user", "content": "Describe Paris as JSON."}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("clients-logs")) as stack:
        yield stack


def sdk(stack: Stack) -> OpenAI:
    return OpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)


def valid_call(name: str, arguments: str | dict[str, Any], spec: dict[str, Any]) -> None:
    assert name == spec["function"]["name"]
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    jsonschema.validate(args, spec["function"]["parameters"])


# --------------------------------------------------------------------- structured output


@pytest.mark.parametrize("route", ROUTES)
def test_openai_parse_with_a_pydantic_model(stack: Stack, route: str) -> None:
    completion = sdk(stack).chat.completions.parse(
        model=route, messages=ASK_CITY, response_format=City, max_tokens=80, temperature=0
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, City)
    jsonschema.validate(json.loads(message.content or ""), City.model_json_schema())


async def test_openai_json_object_streamed_async(stack: Stack) -> None:
    client = AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}}
    stream = await client.chat.completions.create(
        model="cloud",
        messages=[{"role": "user", "content": "What is 2 + 3?"}],
        response_format=fmt,
        max_tokens=40,
        stream=True,
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(parts) > 1  # streamed as generated, not held back
    jsonschema.validate(json.loads("".join(parts)), schema)


def test_auto_route_sends_structured_requests_to_the_cloud_and_says_why(stack: Stack) -> None:
    raw = sdk(stack).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_object"},
        max_tokens=8,
    )
    assert raw.headers["X-Tandem-Route-Reason"] == "structured-output"
    assert raw.headers["X-Tandem-Served-By"] == "cloud"
    plain = sdk(stack).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert plain.headers["X-Tandem-Route-Reason"] != "structured-output"


@pytest.mark.parametrize("route", ROUTES)
def test_ollama_chat_with_a_format_schema(stack: Stack, route: str) -> None:
    client = ollama.Client(host=stack.edge_url)
    schema = City.model_json_schema()
    reply = client.chat(
        model=route, messages=ASK_CITY, format=schema, options={"num_predict": 80, "top_k": 20}
    )
    jsonschema.validate(json.loads(reply.message.content or ""), schema)


# ---------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize("route", ROUTES)
async def test_openai_named_tool_call_streams_deltas(stack: Stack, route: str) -> None:
    client = AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model=route,
        messages=ASK_WEATHER,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=80,
        stream=True,
    )
    names, arguments, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                names += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    valid_call(names, arguments, WEATHER)


def test_openai_required_tool_call_and_the_round_trip(stack: Stack) -> None:
    client = sdk(stack)
    first = client.chat.completions.create(
        model="edge", messages=ASK_WEATHER, tools=[WEATHER, TIME], tool_choice="required",
        max_tokens=80,
    )  # fmt: skip
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = (choice.message.tool_calls or [])[0]
    assert call.type == "function"
    spec = WEATHER if call.function.name == "get_weather" else TIME
    valid_call(call.function.name, call.function.arguments, spec)
    # The agent loop: replay the call and its result; the model then answers in text.
    history: Any = [
        *ASK_WEATHER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second = client.chat.completions.create(
        model="edge",
        messages=history,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=20,
    )
    assert second.choices[0].message.content
    assert second.choices[0].message.tool_calls is None


@pytest.mark.parametrize("route", ROUTES)
def test_ollama_chat_with_tools(stack: Stack, route: str) -> None:
    client = ollama.Client(host=stack.edge_url)
    reply = client.chat(
        model=route, messages=ASK_WEATHER, tools=[WEATHER], options={"num_predict": 80}
    )
    # Ollama has no tool_choice: "auto", a call or a text answer, and either is whole.
    calls = reply.message.tool_calls or []
    if calls:
        valid_call(calls[0].function.name, dict(calls[0].function.arguments), WEATHER)
    else:
        assert reply.message.content


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
    """Current weather in a city."""
    return f"21 degrees {unit} in {city}"


@pytest.mark.parametrize("route", ROUTES)
def test_langchain_structured_output_and_bound_tools(stack: Stack, route: str) -> None:
    llm = ChatOpenAI(
        base_url=f"{stack.edge_url}/v1",
        api_key=SecretStr("unused"),
        model=route,
        max_completion_tokens=80,
        max_retries=0,
    )
    city = llm.with_structured_output(City).invoke("Describe Paris.")
    assert isinstance(city, City)
    message = llm.bind_tools([get_weather], tool_choice="get_weather").invoke(
        "What is the weather in Rome?"
    )
    call = message.tool_calls[0]
    assert call["name"] == "get_weather"
    jsonschema.validate(call["args"], WEATHER["function"]["parameters"])


# ---------------------------------------------------------------------- sampling options


def test_sampling_options_are_honoured(stack: Stack) -> None:
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(model_path()), vocab_only=True, verbose=False)
    try:
        bang = vocab.tokenize(b"!", add_bos=False, special=False)[0]
    finally:
        vocab.close()
    client = sdk(stack)
    forced = client.chat.completions.create(
        model="edge", messages=ASK_WEATHER, max_tokens=5, logit_bias={str(bang): 100}
    )
    assert forced.choices[0].message.content == "!!!!!"
    knobs: Any = {"top_k": 5, "min_p": 0.1, "repeat_penalty": 1.3}
    same = [
        client.chat.completions.create(
            model="edge", messages=ASK_WEATHER, max_tokens=12, temperature=1.0, seed=7,
            presence_penalty=0.5, frequency_penalty=0.5, extra_body=knobs,
        ).choices[0].message.content
        for _ in range(3)
    ]  # fmt: skip
    # The first call evaluates the whole prompt, the others reuse its cached prefix
    # (llama-cpp-python): compare two that took the same path, bit for bit.
    assert same[1] and same[1] == same[2]
    developer = client.chat.completions.create(
        model="edge",
        messages=[{"role": "developer", "content": "Answer briefly."}, *ASK_WEATHER],
        max_tokens=5,
    )
    assert developer.choices[0].message.content


@pytest.mark.parametrize("route", ROUTES)
def test_openai_logprobs(stack: Stack, route: str) -> None:
    reply = sdk(stack).chat.completions.create(
        model=route, messages=ASK_WEATHER, max_tokens=5, logprobs=True, top_logprobs=2
    )
    scored = reply.choices[0].logprobs
    assert scored is not None and scored.content is not None
    assert reply.usage is not None and len(scored.content) == reply.usage.completion_tokens
    for entry in scored.content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 2


def test_ollama_num_ctx_up_to_the_models_limit(stack: Stack) -> None:
    client = ollama.Client(host=stack.edge_url)
    long = [{"role": "user", "content": "Tell me about Paris and its history. " * 6}]
    fits = client.chat(model="edge", messages=long, options={"num_ctx": 512, "num_predict": 4})
    assert fits.done_reason in ("stop", "length")
    with pytest.raises(ollama.ResponseError) as small:
        client.chat(model="edge", messages=long, options={"num_ctx": 16, "num_predict": 4})
    assert small.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as large:
        client.chat(model="edge", messages=long, options={"num_ctx": 1_000_000})
    assert large.value.status_code == 400 and "num_ctx" in str(large.value)


# ---------------------------------------------------------------- nothing silently ignored


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "tools": [WEATHER]}, "logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"n": 2}, "n"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice.function.name",
        ),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format.json_schema.schema"),
        ({"logit_bias": {"not-a-token": 1}}, "logit_bias"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
    ],
)  # fmt: skip
def test_openai_refuses_what_it_cannot_honour(
    stack: Stack, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(stack).chat.completions.create(
            model="edge", messages=ASK_WEATHER, max_tokens=4, extra_body=extra
        )
    body: Any = refused.value.body
    assert body["param"] == param


def test_image_parts_are_refused_by_name(stack: Stack) -> None:
    image: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(stack).chat.completions.create(
            model="edge", messages=[{"role": "user", "content": image}], max_tokens=4
        )
    body: Any = refused.value.body
    assert body["param"] == "messages[0].content"
    client = ollama.Client(host=stack.edge_url)
    with pytest.raises(ollama.ResponseError) as ollama_refused:
        client.chat(
            model="edge",
            messages=[{"role": "user", "content": "What is this?", "images": [b"\x89PNG"]}],
        )
    assert ollama_refused.value.status_code == 400
    assert "messages[0].images" in str(ollama_refused.value)
    with pytest.raises(ollama.ResponseError) as option:
        client.chat(model="edge", messages=ASK_WEATHER, options={"mirostat": 2})
    assert option.value.status_code == 400 and "options.mirostat" in str(option.value)
