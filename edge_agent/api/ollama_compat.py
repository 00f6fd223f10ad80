"""Ollama-compatible endpoints: ``/api/chat`` and ``/api/generate``.

Many local tools (Open WebUI, Continue, editor plugins) speak Ollama's API rather than
OpenAI's. The subset here is the one they use to list models and generate; it reuses
the serving pipeline and ``respond()``, only the payload shapes (NDJSON, ``done`` flags,
nanosecond durations) differ. ``/api/generate`` applies the chat template, as Ollama
does, unless ``raw`` is set: then the prompt goes to the model verbatim. What clients
probe first (``/``, ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version``) is in
``ollama_probe``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.context import REQUEST_CONTEXT, RequestContext
from edge_agent.api.errors import ApiError
from edge_agent.api.limits import BodyLimits
from edge_agent.api.openai_models import MAX_TOKENS_LIMIT, OmitsNoToolCalls, sampling_params
from edge_agent.api.request_fields import ChatMessageIn, RequestBody, refuse_set
from edge_agent.api.streaming import NdjsonWriter, respond
from edge_agent.api.structured import ollama_format
from edge_agent.api.tools import ToolPlan, ToolSpec
from edge_agent.errors import RequestInvalid
from edge_agent.router import RequestedRoute
from edge_agent.serving import ROUTE_HEADER, ModelNames, Served, ServingPipeline
from shared.messages import (
    ChatMessage,
    GenerateRequest,
    SamplingParams,
    StreamEnd,
    Text,
    TokenLogprob,
)

__all__ = ["OllamaRoutes"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OllamaOptions(BaseModel):
    """The ``options`` knobs Tandem honours. Any other key (``mirostat``, ``num_gpu``...)
    is a 400 naming it: an option silently dropped is a setting the user believes in."""

    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    num_predict: int | None = Field(default=None, le=MAX_TOKENS_LIMIT)
    num_ctx: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    """Honoured up to the serving model's context window; more is a 400."""
    stop: list[Text] | Text | None = None

    def sampling(self) -> SamplingParams:
        return sampling_params(
            # Ollama: -1 = unlimited, -2 = fill the context; both mean "no cap" here.
            max_tokens=self.num_predict if self.num_predict and self.num_predict > 0 else None,
            stop=self.stop,
            seed=self.seed,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            num_ctx=self.num_ctx,
        )


class _OllamaRequest(RequestBody):
    model: Text
    """Echoed in answers and in the 404 for an unknown model: must be encodable."""
    stream: bool = True
    options: OllamaOptions = OllamaOptions()
    format: object | None = None
    """``"json"`` or a JSON schema (structured output)."""
    keep_alive: object | None = None
    """Accepted: the model stays loaded for the agent's lifetime whatever it says."""
    think: object | None = None

    def refuse_unsupported(self) -> None:
        self.refuse_unknown(frozenset())
        refuse_set({"think": self.think}, "(thinking models) is not supported by Tandem")


class OllamaChatRequest(_OllamaRequest):
    messages: list[ChatMessageIn] = Field(min_length=1)
    tools: list[ToolSpec] | None = None


class OllamaGenerateRequest(_OllamaRequest):
    prompt: Text = ""
    system: Text | None = None
    raw: bool = False
    images: list[str] | None = None
    suffix: Text | None = None
    template: Text | None = None
    context: list[int] | None = None

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.images:
            raise RequestInvalid(
                "Images are not supported: the models Tandem serves are text-only.",
                param="images",
            )
        refuse_set({"suffix": self.suffix, "template": self.template, "context": self.context})


class OllamaFunctionCall(BaseModel):
    name: str
    arguments: dict[str, object]


class OllamaToolCall(BaseModel):
    function: OllamaFunctionCall


class OllamaMessage(OmitsNoToolCalls):
    role: Literal["assistant"] = "assistant"
    content: Text
    tool_calls: list[OllamaToolCall] | None = None


class OllamaChunk(BaseModel):
    """One NDJSON line; the final one has ``done`` and the statistics set."""

    model: str
    created_at: str
    message: OllamaMessage | None = None
    response: str | None = None
    done: bool = False
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    x_tandem_failovers: int | None = None
    """Times the stream moved to another engine (set on the final line, when any):
    NDJSON has no room for a note where it happened."""

    @model_serializer(mode="wrap")
    def _set_fields_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))


@dataclass(frozen=True)
class OllamaShape:
    """``/api/chat`` (``chat=True``) or ``/api/generate`` lines for one response."""

    model: str
    chat: bool
    served: Served
    tools: ToolPlan | None = None
    """Set when the answer may be a tool call: text is held back and read as a whole."""
    _held: list[str] = field(default_factory=list)

    def _chunk(
        self, text: str, calls: list[OllamaToolCall] | None = None, **extra: object
    ) -> OllamaChunk:
        if self.chat:
            return OllamaChunk.model_validate(
                {
                    "model": self.model,
                    "created_at": _now(),
                    "message": OllamaMessage(content=text, tool_calls=calls),
                    **extra,
                }
            )
        return OllamaChunk.model_validate(
            {"model": self.model, "created_at": _now(), "response": text, **extra}
        )

    def opening(self) -> Sequence[BaseModel]:
        return []

    def delta(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> BaseModel | None:
        if self.tools is not None:
            self._held.append(text)
            return None
        return self._chunk(text)

    def closing(self, end: StreamEnd) -> Sequence[BaseModel]:
        return [self.complete("".join(self._held), end)]

    def error(self, error: ApiError) -> BaseModel:
        return error.ollama_body()

    def complete(
        self, text: str, end: StreamEnd, logprobs: Sequence[TokenLogprob] = ()
    ) -> BaseModel:
        """The final line; Ollama requests cannot ask for ``logprobs`` (refused)."""
        now = time.monotonic()
        first = self.served.first_token_at or now
        calls: list[OllamaToolCall] | None = None
        if self.tools is not None:
            answer = self.tools.parse(text)
            text = answer.content or ""
            calls = [
                OllamaToolCall(function=OllamaFunctionCall(name=c.name, arguments=c.arguments))
                for c in answer.calls
            ] or None
        return self._chunk(
            text,
            calls,
            done=True,
            done_reason=end.finish_reason,
            total_duration=_ns(now - self.served.started),
            load_duration=0,
            prompt_eval_count=end.prompt_tokens,
            prompt_eval_duration=_ns(first - self.served.started),
            eval_count=end.completion_tokens,
            eval_duration=_ns(now - first),
            x_tandem_failovers=self.served.failovers or None,
        )


class OllamaRoutes:
    """The ``/api`` handlers, bound to one pipeline."""

    def __init__(
        self, pipeline: ServingPipeline, names: ModelNames, *, limits: BodyLimits | None = None
    ) -> None:
        self._pipeline = pipeline
        self._names = names
        self._limits = limits or BodyLimits()

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/chat", self.chat)
        router.add_post("/api/generate", self.generate)

    def _requested(self, request: web.Request, model: str) -> RequestedRoute:
        # Ollama clients append the default tag to bare names.
        name = model.removesuffix(":latest")
        return self._names.requested_route(name, request.headers.get(ROUTE_HEADER))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        body = await read_model(request, OllamaChatRequest)
        body.refuse_unsupported()
        self._limits.check_stop(body.options.stop, param="options.stop")
        requested = self._requested(request, body.model)
        messages = tuple(m.flattened(i) for i, m in enumerate(body.messages))
        params = body.options.sampling()
        output = ollama_format(body.format)
        tools = ToolPlan.of(body.tools, None)
        if tools is not None:
            if output is not None:
                raise RequestInvalid("format cannot be combined with tools.", param="format")
            messages, output = tools.with_tools(messages), tools.output()
        generate = GenerateRequest(
            request_id=ctx.request_id, messages=messages, params=params, output=output
        )
        return await self._serve(
            request, ctx, generate, requested, stream=body.stream, chat=True, tools=tools
        )

    async def generate(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        body = await read_model(request, OllamaGenerateRequest)
        body.refuse_unsupported()
        self._limits.check_stop(body.options.stop, param="options.stop")
        requested = self._requested(request, body.model)
        if not body.prompt:  # Ollama's "load the model" call: nothing to generate
            loaded = OllamaChunk(model=body.model, created_at=_now(), response="", done=True)
            return json_response(loaded)
        params = body.options.sampling()
        output = ollama_format(body.format)
        if body.raw:
            generate = GenerateRequest(
                request_id=ctx.request_id, prompt=body.prompt, params=params, output=output
            )
        else:
            turns = [ChatMessage(role="system", content=body.system)] if body.system else []
            turns.append(ChatMessage(role="user", content=body.prompt))
            generate = GenerateRequest(
                request_id=ctx.request_id, messages=tuple(turns), params=params, output=output
            )
        return await self._serve(request, ctx, generate, requested, stream=body.stream, chat=False)

    async def _serve(
        self,
        request: web.Request,
        ctx: RequestContext,
        generate: GenerateRequest,
        requested: RequestedRoute,
        *,
        stream: bool,
        chat: bool,
        tools: ToolPlan | None = None,
    ) -> web.StreamResponse:
        async with self._pipeline.serve(generate, requested, ctx.report) as served:
            shape = OllamaShape(served.model, chat, served, tools)
            return await respond(request, ctx, served, shape, NdjsonWriter, stream=stream)
