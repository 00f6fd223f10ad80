"""OpenAI's request and response bodies, as pydantic models.

Every field Tandem honours is parsed (sampling knobs, ``logprobs``, ``response_format``,
``tools``...); fields it knows and cannot honour (``n`` > 1, image or audio parts,
``audio``, legacy ``functions``...) and fields it does not know are a 400 naming the
field (``refuse_unsupported``): a silently ignored field is a setting the client believes
in. Fields that change nothing in the answer (``user``, ``metadata``, ``store``,
``service_tier``) are accepted. docs/clients.md has the table.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from edge_agent.api.logprobs import ChatLogprobs, CompletionLogprobs
from edge_agent.api.request_fields import (
    NO_EFFECT_FIELDS,
    ChatMessageIn,
    ContentPart,
    RequestBody,
    logit_bias_pairs,
    refuse_set,
)
from edge_agent.api.structured import ResponseFormat
from edge_agent.api.tools import ToolSpec
from edge_agent.errors import RequestInvalid
from shared.messages import MAX_TOP_LOGPROBS, ChatMessage, SamplingParams, StreamEnd, Text

__all__ = [
    "COMPLETIONS_DEFAULT_MAX_TOKENS",
    "MAX_TOKENS_LIMIT",
    "NO_EFFECT_FIELDS",
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
    "FunctionCallOut",
    "ModelCard",
    "ModelList",
    "StreamOptions",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "logit_bias_pairs",
    "refuse_set",
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
    **extra: object,
) -> SamplingParams:
    """Wire sampling knobs from an HTTP body's (OpenAI's or Ollama's); unset ones keep
    the protocol's defaults. ``extra`` are further ``SamplingParams`` fields (``top_k``,
    ``min_p``, penalties, ``logit_bias`` pairs, ``num_ctx``), passed when set."""
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
    knobs.update({k: v for k, v in extra.items() if v is not None})
    return SamplingParams.model_validate(knobs)


"""llama.cpp seeds are 32-bit; larger (or negative) OpenAI seeds are folded into range."""

FinishReason = Literal["stop", "length", "tool_calls"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Lenient):
    include_usage: bool = False


class _GenerationRequest(RequestBody):
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
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    # Known fields Tandem cannot honour: parsed only to be refused by name.
    audio: object | None = None
    prediction: object | None = None
    web_search_options: object | None = None
    modalities: list[str] | None = None

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

    def refuse_unsupported(self) -> None:
        """A 400 naming the first field set that Tandem cannot honour."""
        self.refuse_unknown()
        refuse_set(
            {
                "audio": self.audio,
                "prediction": self.prediction,
                "web_search_options": self.web_search_options,
            }
        )
        if self.modalities is not None and set(self.modalities) - {"text"}:
            raise RequestInvalid("Only the text modality is supported.", param="modalities")

    def sampling(self) -> SamplingParams:
        """The request's sampling knobs; unset ones keep the protocol's defaults."""
        return sampling_params(
            max_tokens=self._max_tokens(),
            stop=self.stop,
            seed=self.seed,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            logit_bias=logit_bias_pairs(self.logit_bias, param="logit_bias") or None,
            logprobs=self._logprobs(),
        )

    def _logprobs(self) -> int | None:
        """Alternatives per token to report; ``None``: no logprobs."""
        return None


class ChatCompletionRequest(_GenerationRequest):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: TokenLimit | None = None
    response_format: ResponseFormat | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: object | None = None
    parallel_tool_calls: bool | None = None
    """Accepted: it allows several calls per answer; Tandem makes at most one."""
    functions: object | None = None
    function_call: object | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)

    def _logprobs(self) -> int | None:
        if self.top_logprobs is not None and not self.logprobs:
            raise RequestInvalid("top_logprobs needs logprobs: true.", param="top_logprobs")
        return (self.top_logprobs or 0) if self.logprobs else None

    def _max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        refuse_set(
            {"functions": self.functions, "function_call": self.function_call},
            "(the legacy function-calling API) is not supported; use tools",
        )
        if self.tools and self.logprobs:
            raise RequestInvalid("logprobs cannot be combined with tools.", param="logprobs")
        if self.tools and self.response_format is not None and self.response_format.type != "text":
            raise RequestInvalid(
                "response_format cannot be combined with tools; use one or the other.",
                param="response_format",
            )

    def chat_messages(self) -> tuple[ChatMessage, ...]:
        return tuple(m.flattened(i) for i, m in enumerate(self.messages))


Prompt = Annotated[Text, Field(min_length=1)]
"""A raw prompt: an empty one gives the model no token to start from (llama.cpp asserts)."""


class CompletionRequest(_GenerationRequest):
    """Body of ``POST /v1/completions``."""

    prompt: Prompt | list[Prompt]
    max_tokens: TokenLimit | None = COMPLETIONS_DEFAULT_MAX_TOKENS
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    """The legacy form: alternatives per token (0: the chosen token's only)."""

    def _logprobs(self) -> int | None:
        return self.logprobs

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        refuse_set({"echo": self.echo, "suffix": self.suffix})
        if self.best_of is not None and self.best_of != 1:
            raise RequestInvalid("only best_of=1 is supported.", param="best_of")

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


class FunctionCallOut(BaseModel):
    name: str
    arguments: str
    """JSON text, as OpenAI sends it."""


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ToolCallDelta(BaseModel):
    """A streamed call: Tandem sends each call whole, in one delta."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class OmitsNoToolCalls(BaseModel):
    """An assistant message whose ``tool_calls`` key is absent, not ``null``, when it
    made none: strict clients (and both APIs' own servers) treat a present key as a call."""

    @model_serializer(mode="wrap")
    def _calls_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if getattr(self, "tool_calls", None) is None:
            data.pop("tool_calls", None)
        return data


class AssistantMessage(OmitsNoToolCalls):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
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
    tool_calls: list[ToolCallDelta] | None = None

    @model_serializer(mode="wrap")
    def _set_fields_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    logprobs: ChatLogprobs | None = None
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
    logprobs: CompletionLogprobs | None = None
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
