"""The OpenAI endpoints through the official SDK and raw HTTP, over the real model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio
from aiohttp import ClientSession
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.edge_agent.api.harness import Agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]


@pytest_asyncio.fixture(loop_scope="module")
async def client(agent: Agent) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=agent.v1, api_key="x", max_retries=0) as sdk:
        yield sdk


async def sse_events(http: ClientSession, url: str, body: dict[str, Any]) -> tuple[Any, list[str]]:
    """POST ``body`` and return the response plus every ``data:`` payload, in order."""
    async with http.post(url, json=body) as response:
        raw = await response.text()
    events = [
        line.removeprefix("data: ") for line in raw.split("\n\n") if line.startswith("data: ")
    ]
    return response, events


async def test_chat_completion(client: AsyncOpenAI, agent: Agent) -> None:
    completion = await client.chat.completions.create(
        model="auto",
        messages=QUESTION,
        max_tokens=32,
        temperature=0,
        seed=1,
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == agent.local.model
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 32
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_chat_completion_is_deterministic_at_temperature_zero(client: AsyncOpenAI) -> None:
    texts = set()
    for _ in range(2):
        completion = await client.chat.completions.create(
            model="edge",
            messages=QUESTION,
            max_tokens=16,
            temperature=0,
        )
        texts.add(completion.choices[0].message.content)
    assert len(texts) == 1


async def test_small_max_tokens_finishes_with_length(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="edge",
        messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
        max_completion_tokens=3,
        temperature=0,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


async def test_chat_stream(client: AsyncOpenAI, agent: Agent) -> None:
    stream = await client.chat.completions.create(
        model="auto",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(contents) > 1, "tokens must arrive as separate chunks"
    assert "".join(contents).strip()
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["stop"], ["length"])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens <= 24
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {agent.local.model}


async def test_chat_stream_wire_format(http: ClientSession, agent: Agent) -> None:
    body = {"messages": QUESTION, "max_tokens": 8, "stream": True, "temperature": 0}
    response, events = await sse_events(http, f"{agent.v1}/chat/completions", body)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Tandem-Served-By"] == "local"
    assert response.headers["X-Tandem-Route-Reason"] == "cloud-unavailable"
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    chunks = [json.loads(e) for e in events[:-1]]
    assert response.headers["X-Request-Id"] == chunks[0]["id"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert all("usage" not in c or c["usage"] is None for c in chunks)  # not asked for


async def test_text_completion(client: AsyncOpenAI, agent: Agent) -> None:
    completion = await client.completions.create(
        model="edge", prompt="The three primary colors are", max_tokens=12, temperature=0
    )
    assert completion.id.startswith("cmpl-")
    assert completion.object == "text_completion"
    assert completion.model == agent.local.model
    assert completion.choices[0].text.strip()
    usage = completion.usage
    assert usage is not None and 0 < usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_text_completion_default_max_tokens_is_openais(client: AsyncOpenAI) -> None:
    completion = await client.completions.create(
        model="edge", prompt=["Once upon a time"], temperature=0
    )
    assert completion.usage is not None and completion.usage.completion_tokens <= 16


async def test_text_completion_stream(client: AsyncOpenAI) -> None:
    stream = await client.completions.create(
        model="edge",
        prompt="Once upon a time",
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert len(texts) > 1 and "".join(texts).strip()
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10
    assert chunks[-2].choices[0].finish_reason == "length"


async def test_stop_sequence_is_honoured(client: AsyncOpenAI) -> None:
    completion = await client.completions.create(
        model="edge", prompt="1, 2, 3, 4, 5,", max_tokens=30, temperature=0, stop=["8"]
    )
    assert "8" not in completion.choices[0].text
    assert completion.choices[0].finish_reason == "stop"


async def test_models(client: AsyncOpenAI, agent: Agent) -> None:
    models = await client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["auto", "edge", agent.local.model]  # no "cloud": none configured
    assert {m.owned_by for m in models.data} == {"tandem"}


async def test_content_parts_and_unknown_fields(http: ClientSession, agent: Agent) -> None:
    body = {
        "model": agent.local.model,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
        ],
        "max_tokens": 4,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.1,
        "logit_bias": {"1": -100},
        "user": "someone",
        "n": 1,
    }
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        assert response.status == 200, await response.text()
        assert response.headers["X-Tandem-Route-Reason"] == "forced-local"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": QUESTION, "n": 2}, "n"),
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
        ({"messages": QUESTION, "temperature": 3}, "temperature"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AA=="},
                            },
                        ],
                    }
                ]
            },
            "messages[0].content",
        ),
        # Regressions (were 500s): past llama.cpp's 32-bit token counts...
        ({"messages": QUESTION, "max_tokens": 2**31}, "max_tokens"),
        ({"messages": QUESTION, "max_completion_tokens": 2**31}, "max_completion_tokens"),
        # ... and lone surrogates in fields echoed back (the error body failed to encode).
        ({"messages": QUESTION, "model": "\ud800"}, "model"),
        (
            {"messages": [{"role": "user", "content": [{"type": "\ud800"}]}]},
            "messages[0].content",
        ),
    ],
)
async def test_invalid_chat_bodies(
    http: ClientSession, agent: Agent, body: dict[str, Any], param: str
) -> None:
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ["one", "two"]}, "prompt"),
        # Regressions (were 500s): an empty prompt gives llama.cpp no token to start from.
        ({"prompt": ""}, "prompt"),
        ({"prompt": [""]}, "prompt"),
        ({"prompt": "Hi", "max_tokens": 2**31}, "max_tokens"),
    ],
)
async def test_invalid_completion_bodies(
    http: ClientSession, agent: Agent, body: dict[str, Any], param: str
) -> None:
    async with http.post(f"{agent.v1}/completions", json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == param


async def test_prompt_without_tokens_is_a_400(http: ClientSession, agent: Agent) -> None:
    # Found by the fuzz run: "\x04" is one of six control characters that SmolLM2's
    # tokenizer turns into no token at all, and it adds no BOS.
    body = {"prompt": "\x04", "max_tokens": 2}
    async with http.post(f"{agent.v1}/completions", json=body) as response:
        assert response.status == 400


async def test_deeply_nested_body_is_a_400(http: ClientSession, agent: Agent) -> None:
    # Regression (was a 500): json.loads raises RecursionError, not ValueError, past the
    # interpreter's recursion limit.
    data = "[" * 100_000 + "]" * 100_000
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{agent.v1}/chat/completions", data=data, headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_json"


async def test_sdk_sees_openai_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert not_found.value.code == "model_not_found"
    assert not_found.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="edge", messages=QUESTION, n=3)
    assert bad.value.param == "n"
