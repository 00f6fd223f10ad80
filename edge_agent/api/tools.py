"""Tool calls as constrained JSON: ``tools`` + ``tool_choice`` in, ``tool_calls`` out.

Tandem implements function calling the way llama.cpp's grammar-based servers do, so
that every engine able to enforce a JSON schema can serve it (the wire knows nothing
of tools):

* the tools are described to the model in a system message (name, description,
  parameter schema, and the JSON shape to answer with);
* the answer is constrained (``OutputFormat``) to a JSON document:

  - ``required``: ``{"name": <one of the tools>, "arguments": <its parameters>}``, each
    function's ``arguments`` validated by its own schema (an ``anyOf`` over the tools);
  - a named function: the same with only that function;
  - ``auto`` (the default): either such a call or ``{"content": "<a text answer>"}``; the
    grammar allows both and the model picks. Text answers thus arrive whole at the end
    of the stream rather than token by token;
  - ``none``: no constraint and no tool description; the model answers in text;

* the edge parses the document into OpenAI ``tool_calls`` (``finish_reason:
  "tool_calls"``) or Ollama ``message.tool_calls``; an answer cut short by
  ``max_tokens`` is returned as text with ``finish_reason: "length"``.

One call per answer (``parallel_tool_calls`` may allow more; one is always allowed).
Earlier turns are replayed as the model would have written them: an assistant's
``tool_calls`` as the same JSON, a ``tool`` result as a user turn naming the call.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api.structured import check_schema
from edge_agent.errors import RequestInvalid
from shared.messages import ChatMessage, OutputFormat

__all__ = [
    "FunctionSpec",
    "ParsedAnswer",
    "ToolCallOut",
    "ToolPlan",
    "ToolSpec",
    "call_text",
    "new_call_id",
]

_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(BaseModel):
    """One entry of ``tools`` (OpenAI's and Ollama's share this shape)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["function"] = "function"
    function: FunctionSpec


Mode = Literal["auto", "required", "none", "named"]


@dataclass(frozen=True)
class ToolCallOut:
    """One call the model made: ``arguments`` as a parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedAnswer:
    """A constrained answer, read back: a call, or text (``content``)."""

    calls: tuple[ToolCallOut, ...]
    content: str | None


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def call_text(name: str, arguments: object) -> str:
    """A call as the model writes it (for replaying an assistant's earlier calls)."""
    if isinstance(arguments, str):
        # Unparseable arguments are replayed verbatim: the model wrote them.
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if arguments.strip() else {}
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def _parameters(spec: FunctionSpec, index: int) -> dict[str, Any]:
    params = spec.parameters or {"type": "object", "properties": {}}
    text = check_schema(params, param=f"tools[{index}].function.parameters")
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True)
class ToolPlan:
    """What a request's ``tools`` and ``tool_choice`` ask of the answer."""

    tools: tuple[ToolSpec, ...]
    mode: Mode
    named: str | None = None

    @classmethod
    def of(cls, tools: list[ToolSpec] | None, choice: object) -> ToolPlan | None:
        """``None`` when the request has no tools (and a ``tool_choice`` that needs none)."""
        if not tools:
            if choice not in (None, "none", "auto"):
                raise RequestInvalid("tool_choice needs tools.", param="tool_choice")
            return None
        names = [t.function.name for t in tools]
        if len(set(names)) != len(names):
            raise RequestInvalid("tools must have distinct function names.", param="tools")
        if choice is None or choice == "auto":
            return cls(tuple(tools), "auto")
        if choice in ("none", "required"):
            return cls(tuple(tools), "none" if choice == "none" else "required")
        if isinstance(choice, dict):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if choice.get("type") == "function" and isinstance(name, str):
                if name not in names:
                    raise RequestInvalid(
                        f"tool_choice names '{name}', which is not among tools.",
                        param="tool_choice.function.name",
                    )
                return cls(tuple(tools), "named", name)
        raise RequestInvalid(
            'tool_choice must be "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}.',
            param="tool_choice",
        )

    def _chosen(self) -> list[tuple[int, ToolSpec]]:
        return [
            (i, t)
            for i, t in enumerate(self.tools)
            if self.mode != "named" or t.function.name == self.named
        ]

    def output(self) -> OutputFormat | None:
        """The constraint on the answer (``None`` for ``none``)."""
        if self.mode == "none":
            return None
        calls: list[dict[str, Any]] = [
            {
                "type": "object",
                "properties": {
                    "name": {"const": t.function.name},
                    "arguments": _parameters(t.function, i),
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for i, t in self._chosen()
        ]
        if self.mode == "auto":
            calls.append(
                {
                    "type": "object",
                    "properties": {"content": {"type": "string"}},
                    "required": ["content"],
                    "additionalProperties": False,
                }
            )
        schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
        text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        return OutputFormat(schema_text=text, name="tool_call", strict=True)

    def system_message(self) -> ChatMessage | None:
        """The tools described to the model (``None`` for ``none``)."""
        if self.mode == "none":
            return None
        lines = ["You can call these functions:"]
        for i, t in self._chosen():
            f = t.function
            params = json.dumps(_parameters(f, i), ensure_ascii=False)
            lines.append(f"- {f.name}: {f.description or ''} Parameters (JSON schema): {params}")
        lines.append(
            'To call one, answer only with JSON: {"name": <function name>, "arguments": '
            "<arguments object>}."
        )
        if self.mode == "auto":
            lines.append('To answer without a call, answer with JSON: {"content": <your answer>}.')
        return ChatMessage(role="system", content="\n".join(lines))

    def with_tools(self, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        """``messages`` with the tool description merged into (or before) the system turn."""
        note = self.system_message()
        if note is None:
            return messages
        if messages and messages[0].role == "system":
            merged = ChatMessage(role="system", content=messages[0].content + "\n\n" + note.content)
            return (merged, *messages[1:])
        return (note, *messages)

    def parse(self, text: str) -> ParsedAnswer:
        """The answer read back; text that is no complete call (cut short) stays text."""
        if self.mode == "none":
            return ParsedAnswer((), text)
        try:
            data = json.loads(text)
        except ValueError:
            return ParsedAnswer((), text)
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            arguments = data.get("arguments")
            if isinstance(arguments, dict):
                return ParsedAnswer((ToolCallOut(new_call_id(), data["name"], arguments),), None)
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            return ParsedAnswer((), data["content"])
        return ParsedAnswer((), text)
