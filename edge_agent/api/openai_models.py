"""OpenAI's request and response bodies, as pydantic models.

Requests are lenient where OpenAI clients are sloppy and strict where we would otherwise
answer wrongly: unknown fields (``presence_penalty``, ``logit_bias``, ``tools``...) are
ignored, because SDKs and UIs send them by default and refusing them breaks those
clients for knobs that only nudge sampling; but anything we cannot honour and that
changes the shape of the answer (``n`` > 1, image parts) is a 400.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from edge_agent.errors import RequestInvalid
from shared.messages import ChatMessage, SamplingParams, StreamEnd, Text

__all__ = [
    "COMPLETIONS_DEFAULT_MAX_TOKENS",
    "MAX_TOKENS_LIMIT",
    "ChatChoice",
    "ChatChunkChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatDelta",
    "ChatMessageIn",
    "Completion",
    "CompletionChoice",
    "CompletionRequest",
    "ContentPart",
    "FinishReason",
    "ModelCard",
    "ModelList",
    "StreamOptions",
    "Usage",
]

COMPLETIONS_DEFAULT_MAX_TOKENS = 16
"""OpenAI's default for the legacy completions endpoint; clients rely on it."""

MAX_TOKENS_LIMIT = 2**31 - 1
"""llama.cpp counts tokens in 32 bits; the wire's ``SamplingParams`` refuses more, so a
body asking for more is refused here, as a 400, rather than there, as a 500."""

TokenLimit = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]

SEED_MASK = 0xFFFFFFFF


def sampling_params(
    *,
    max_tokens: int | None,
    stop: str | list[str] | None,
    seed: int | None,
    temperature: float | None,
    top_p: float | None,
) -> SamplingParams:
    """Wire sampling knobs from an HTTP body's (OpenAI's or Ollama's); unset ones keep
    the protocol's defaults."""
    stops = [stop] if isinstance(stop, str) else (stop or [])
    knobs: dict[str, object] = {
        "max_tokens": max_tokens,
        "stop": tuple(s for s in stops if s),
        "seed": None if seed is None else seed & SEED_MASK,
    }
    if temperature is not None:
        knobs["temperature"] = temperature
    if top_p is not None:
        knobs["top_p"] = top_p
    return SamplingParams.model_validate(knobs)


"""llama.cpp seeds are 32-bit; larger (or negative) OpenAI seeds are folded into range."""

FinishReason = Literal["stop", "length"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ------------------------------------------------------------------------------ requests


class ContentPart(_Lenient):
    """One element of a list-valued ``content``; only ``text`` parts are served."""

    type: Text
    """Echoed in the refusal of non-text parts: must be encodable."""
    text: Text | None = None


class ChatMessageIn(_Lenient):
    """A chat turn as clients send it."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | list[ContentPart] | None = None

    def flattened(self, index: int) -> ChatMessage:
        """This turn with its content as one string; non-text parts are refused."""
        if self.content is None or isinstance(self.content, str):
            return ChatMessage(role=self.role, content=self.content or "")
        texts: list[str] = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise RequestInvalid(
                    f"Content parts of type '{part.type}' are not supported; send text only.",
                    param=f"messages[{index}].content",
                )
            texts.append(part.text)
        return ChatMessage(role=self.role, content="\n".join(texts))


class StreamOptions(_Lenient):
    include_usage: bool = False


class _GenerationRequest(_Lenient):
    """Fields shared by chat and text completions."""

    model: Text | None = None
    """Echoed in the 404 for an unknown model: must be encodable."""
    max_tokens: TokenLimit | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: Text | list[Text] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    user: str | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is supported")
        return n

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def _max_tokens(self) -> int | None:
        return self.max_tokens

    def sampling(self) -> SamplingParams:
        """The request's sampling knobs; unset ones keep the protocol's defaults."""
        return sampling_params(
            max_tokens=self._max_tokens(),
            stop=self.stop,
            seed=self.seed,
            temperature=self.temperature,
            top_p=self.top_p,
        )


class ChatCompletionRequest(_GenerationRequest):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: TokenLimit | None = None

    def _max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def chat_messages(self) -> tuple[ChatMessage, ...]:
        return tuple(m.flattened(i) for i, m in enumerate(self.messages))


Prompt = Annotated[Text, Field(min_length=1)]
"""A raw prompt: an empty one gives the model no token to start from (llama.cpp asserts)."""


class CompletionRequest(_GenerationRequest):
    """Body of ``POST /v1/completions``."""

    prompt: Prompt | list[Prompt]
    max_tokens: TokenLimit | None = COMPLETIONS_DEFAULT_MAX_TOKENS

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError("exactly one prompt is supported")
        return prompt

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# ----------------------------------------------------------------------------- responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, end: StreamEnd) -> Usage:
        return cls(
            prompt_tokens=end.prompt_tokens,
            completion_tokens=end.completion_tokens,
            total_tokens=end.prompt_tokens + end.completion_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class ChatDelta(BaseModel):
    """A streamed message fragment; unset fields are left out, as OpenAI does."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer
    def _set_fields_only(self) -> dict[str, str]:
        return {k: v for k, v in (("role", self.role), ("content", self.content)) if v is not None}


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: FinishReason | None = None


class Completion(BaseModel):
    """A text completion, and (with ``usage`` unset) one streamed chunk of it."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "tandem"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
