"""Request fields both dialects share: chat turns (text, tool calls, tool results),
the refusal of fields Tandem cannot honour, ``logit_bias``.

A chat turn is flattened here to what the model reads (``ChatMessage``): ``developer``
is a system turn, an assistant's ``tool_calls`` the JSON the model would have written, a
``tool`` result a user turn naming the call (``edge_agent.api.tools``). Images and audio
are refused by name: the models Tandem serves are text-only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from edge_agent.api.tools import call_text
from edge_agent.errors import RequestInvalid
from shared.messages import MAX_LOGIT_BIAS, ChatMessage, Text

__all__ = [
    "NO_EFFECT_FIELDS",
    "ChatMessageIn",
    "ContentPart",
    "FunctionCallIn",
    "RequestBody",
    "ToolCallIn",
    "logit_bias_pairs",
    "refuse_set",
]


def logit_bias_pairs(bias: dict[str, float] | None, *, param: str) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"token id": bias}`` as wire pairs; a key that is no token id is a 400."""
    if not bias:
        return ()
    if len(bias) > MAX_LOGIT_BIAS:
        raise RequestInvalid(f"{param} has more than {MAX_LOGIT_BIAS} entries.", param=param)
    pairs: list[tuple[int, float]] = []
    for key, value in bias.items():
        if not key.isdigit() or not -100.0 <= value <= 100.0:
            raise RequestInvalid(
                f"{param} maps token ids (digits) to biases in [-100, 100]; got {key!r}.",
                param=param,
            )
        pairs.append((int(key), float(value)))
    return tuple(pairs)


def refuse_set(fields: dict[str, object], why: str = "is not supported by Tandem") -> None:
    """A 400 naming the first of ``fields`` (name -> value) that a client set."""
    for name, value in fields.items():
        if value is not None and value is not False:
            raise RequestInvalid(f"{name} {why}; leave it unset.", param=name)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


NO_EFFECT_FIELDS = frozenset(
    {"metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}
)
"""Top-level fields accepted although they change nothing in the answer (OpenAI's
storage, billing and caching hints). Any other field Tandem does not know is refused."""


class RequestBody(BaseModel):
    """A request body: unknown top-level fields are kept, to be refused by name."""

    model_config = ConfigDict(extra="allow")

    def refuse_unknown(self, allowed: frozenset[str] = NO_EFFECT_FIELDS) -> None:
        for name in self.model_extra or {}:
            if name not in allowed:
                raise RequestInvalid(
                    f"{name} is not a field Tandem supports; leave it out "
                    "(docs/clients.md lists what is supported).",
                    param=name,
                )


# ------------------------------------------------------------------------------ requests


class ContentPart(_Lenient):
    """One element of a list-valued ``content``; only ``text`` parts are served."""

    type: Text
    """Echoed in the refusal of non-text parts: must be encodable."""
    text: Text | None = None


class FunctionCallIn(_Lenient):
    name: Text
    arguments: Text | dict[str, object] = "{}"
    """OpenAI sends a JSON string, Ollama an object."""


class ToolCallIn(_Lenient):
    """An earlier assistant turn's call, as OpenAI and Ollama clients replay it."""

    id: Text | None = None
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Lenient):
    """A chat turn as clients send it (OpenAI's fields and Ollama's)."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: Text | None = None
    name: Text | None = None
    tool_name: Text | None = None
    """Ollama's name for the tool a ``tool`` turn answers."""
    images: list[str] | None = None
    """Ollama's images: refused (the models served are text-only)."""
    audio: object | None = None

    def flattened(self, index: int) -> ChatMessage:
        """This turn as the model reads it, content as one string: ``developer`` is a
        ``system`` turn, an assistant's ``tool_calls`` the JSON it would have written, a
        ``tool`` result a user turn naming the call (``edge_agent.api.tools``). Images and
        audio are refused: the models served are text-only."""
        if self.images:
            raise RequestInvalid(
                "Images are not supported: the models Tandem serves are text-only.",
                param=f"messages[{index}].images",
            )
        refuse_set({f"messages[{index}].audio": self.audio})
        text = self._text(index)
        if self.role == "developer":
            return ChatMessage(role="system", content=text)
        if self.role == "assistant" and self.tool_calls:
            calls = [call_text(c.function.name, c.function.arguments) for c in self.tool_calls]
            return ChatMessage(role="assistant", content="\n".join([*filter(None, [text]), *calls]))
        if self.role == "tool":
            tool = self.name or self.tool_name or "the tool"
            call = f" (call {self.tool_call_id})" if self.tool_call_id else ""
            return ChatMessage(role="user", content=f"Result of {tool}{call}:\n{text}")
        return ChatMessage(role=self.role, content=text)

    def _text(self, index: int) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        texts: list[str] = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise RequestInvalid(
                    f"Content parts of type '{part.type}' are not supported; send text only.",
                    param=f"messages[{index}].content",
                )
            texts.append(part.text)
        return "\n".join(texts)
