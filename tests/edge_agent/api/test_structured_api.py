"""Structured output and tool calls at the HTTP layer, over the real local model: the
paths the official-client e2e tests do not take (Ollama ``/api/generate`` with
``format``, a streamed Ollama tool answer, ``tool_choice: none``, a streamed ``auto``
answer), and unknown fields refused by name in both dialects."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from aiohttp import ClientSession

from tests.edge_agent.api.harness import Agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCHEMA: Any = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "n": {"enum": [1, 2, 3]}},
    "required": ["ok", "n"],
    "additionalProperties": False,
}
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string", "maxLength": 20}},
            "required": ["q"],
        },
    },
}
ASK = [{"role": "user", "content": "Look up the weather."}]


async def lines_of(http: ClientSession, url: str, body: dict[str, Any]) -> list[Any]:
    async with http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        raw = await response.text()
    return [json.loads(line) for line in raw.splitlines() if line]


async def test_ollama_generate_with_a_schema(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "prompt": "Answer in JSON.", "format": SCHEMA, "stream": False}
    (line,) = await lines_of(http, f"{agent.url}/api/generate", body)
    jsonschema.validate(json.loads(line["response"]), SCHEMA)


async def test_ollama_streamed_tool_answer_comes_whole(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "messages": ASK, "tools": [TOOL], "options": {"num_predict": 60}}
    lines = await lines_of(http, f"{agent.url}/api/chat", body)
    assert len(lines) == 1 and lines[0]["done"] is True  # held back, then sent whole
    message = lines[0]["message"]
    for call in message.get("tool_calls", []):
        assert call["function"]["name"] == "lookup"
        jsonschema.validate(call["function"]["arguments"], TOOL["function"]["parameters"])
    assert message.get("tool_calls") or message["content"]


async def test_openai_tool_choice_none_answers_in_text(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "messages": ASK, "tools": [TOOL], "tool_choice": "none"}
    async with http.post(f"{agent.v1}/chat/completions", json={**body, "max_tokens": 6}) as r:
        reply = await r.json()
    choice = reply["choices"][0]
    assert choice["finish_reason"] in ("stop", "length")
    assert "tool_calls" not in choice["message"] and choice["message"]["content"]


async def test_openai_streamed_auto_answer(http: ClientSession, agent: Agent) -> None:
    body = {"model": "edge", "messages": ASK, "tools": [TOOL], "max_tokens": 60, "stream": True}
    async with http.post(f"{agent.v1}/chat/completions", json=body) as response:
        raw = await response.text()
    events = [
        json.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    finish = events[-1]["choices"][0]["finish_reason"]
    deltas = [e["choices"][0]["delta"] for e in events]
    calls = [c for d in deltas for c in d.get("tool_calls", [])]
    if finish == "tool_calls":
        (call,) = calls
        jsonschema.validate(
            json.loads(call["function"]["arguments"]), TOOL["function"]["parameters"]
        )
    else:
        assert not calls and "".join(d.get("content", "") for d in deltas)


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/v1/chat/completions", {"messages": ASK, "reasoning_effort": "high"}, "reasoning_effort"),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo"),
        ("/api/chat", {"messages": ASK, "think": True}, "think"),
        ("/api/chat", {"messages": ASK, "options": {"typical_p": 0.5}}, "options.typical_p"),
        ("/api/generate", {"prompt": "x", "images": ["AAAA"]}, "images"),
        ("/api/generate", {"prompt": "x", "unheard_of": 1}, "unheard_of"),
        (
            "/api/chat",
            {"messages": ASK, "format": {"properties": {"n": {"type": "integer", "maximum": 9}}}},
            "format.properties.n.maximum",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": ASK,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "tabs",
                        "schema": {"type": "string", "pattern": "^[\\t\\n]+$"},
                    },
                },
            },
            "response_format.json_schema.schema",  # JSON text must escape all it allows
        ),
        (
            "/v1/chat/completions",
            {
                "messages": ASK,
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"properties": {"mail": {"format": "email"}}},
                        },
                    }
                ],
            },
            "tools[0].function.parameters.properties.mail.format",
        ),
    ],
)
async def test_fields_that_cannot_be_honoured_are_named(
    http: ClientSession, agent: Agent, path: str, body: dict[str, Any], named: str
) -> None:
    async with http.post(f"{agent.url}{path}", json={"model": "edge", **body}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    if path.startswith("/v1"):
        assert error["param"] == named
    else:
        assert named in error
