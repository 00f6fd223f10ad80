"""Tool plans and structured formats, pure: what each ``tool_choice`` constrains the
answer to, how answers read back, and what is refused by name."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from edge_agent.api.structured import JsonSchemaSpec, ResponseFormat, ollama_format, output_format
from edge_agent.api.tools import ToolPlan, ToolSpec, call_text
from edge_agent.errors import RequestInvalid
from shared.messages import ChatMessage

PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOLS = [
    ToolSpec.model_validate({"function": {"name": "weather", "parameters": PARAMS}}),
    ToolSpec.model_validate({"function": {"name": "time"}}),
]


def schema_of(plan: ToolPlan) -> dict[str, Any]:
    output = plan.output()
    assert output is not None and output.schema_text is not None
    schema: dict[str, Any] = json.loads(output.schema_text)
    return schema


def test_named_choice_allows_only_that_call() -> None:
    plan = ToolPlan.of(TOOLS, {"type": "function", "function": {"name": "weather"}})
    assert plan is not None
    schema = schema_of(plan)
    jsonschema.validate({"name": "weather", "arguments": {"city": "Rome"}}, schema)
    for wrong in (
        {"name": "time", "arguments": {}},
        {"name": "weather", "arguments": {}},
        {"content": "hi"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


def test_required_allows_any_call_and_auto_also_text() -> None:
    required = ToolPlan.of(TOOLS, "required")
    auto = ToolPlan.of(TOOLS, None)
    assert required is not None and auto is not None
    jsonschema.validate({"name": "time", "arguments": {}}, schema_of(required))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"content": "hi"}, schema_of(required))
    jsonschema.validate({"content": "hi"}, schema_of(auto))


def test_none_leaves_the_answer_free() -> None:
    plan = ToolPlan.of(TOOLS, "none")
    assert plan is not None and plan.output() is None and plan.system_message() is None
    assert plan.parse("just text").content == "just text"


def test_answers_read_back() -> None:
    plan = ToolPlan.of(TOOLS, "auto")
    assert plan is not None
    call = plan.parse('{"name": "weather", "arguments": {"city": "Rome"}}')
    assert [(c.name, c.arguments) for c in call.calls] == [("weather", {"city": "Rome"})]
    assert call.calls[0].id.startswith("call_") and call.content is None
    assert plan.parse('{"content": "Hello"}').content == "Hello"
    cut = plan.parse('{"name": "weather", "argu')
    assert cut.calls == () and cut.content == '{"name": "weather", "argu'


def test_tools_are_described_in_the_system_turn() -> None:
    plan = ToolPlan.of(TOOLS, "required")
    assert plan is not None
    turns = plan.with_tools(
        (ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="?"))
    )
    assert len(turns) == 2 and turns[0].content.startswith("Be brief.")
    assert "weather" in turns[0].content and "time" in turns[0].content


def test_replayed_calls_are_the_json_the_model_writes() -> None:
    assert json.loads(call_text("weather", '{"city": "Rome"}')) == {
        "name": "weather",
        "arguments": {"city": "Rome"},
    }


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        (None, "required", "tool_choice"),
        (TOOLS, {"type": "function", "function": {"name": "nope"}}, "tool_choice.function.name"),
        (TOOLS, "sometimes", "tool_choice"),
        ([TOOLS[0], TOOLS[0]], None, "tools"),
    ],
)
def test_bad_tool_requests_are_refused_by_name(tools: Any, choice: object, param: str) -> None:
    with pytest.raises(RequestInvalid) as refused:
        ToolPlan.of(tools, choice)
    assert refused.value.param == param


def test_formats() -> None:
    assert output_format(None) is None
    assert output_format(ResponseFormat(type="text")) is None
    any_json = output_format(ResponseFormat(type="json_object"))
    assert any_json is not None and any_json.schema_text is None
    spec = JsonSchemaSpec.model_validate({"name": "n", "schema": PARAMS, "strict": True})
    strict = output_format(ResponseFormat(type="json_schema", json_schema=spec))
    assert strict is not None and json.loads(strict.schema_text or "") == PARAMS
    assert ollama_format("json") is not None and ollama_format(None) is None
    with pytest.raises(RequestInvalid) as refused:
        ollama_format("yaml")
    assert refused.value.param == "format"
    with pytest.raises(RequestInvalid) as missing:
        output_format(ResponseFormat(type="json_schema"))
    assert missing.value.param == "response_format.json_schema.schema"
