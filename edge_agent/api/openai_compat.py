"""OpenAI-compatible endpoints: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

Each generation handler does the same four steps: name the response, parse the body,
ask the serving pipeline for an open stream, and ``respond()`` with this dialect's shapes.
Bodies and shapes follow OpenAI's API reference closely enough that the official SDK,
LangChain and Open WebUI work unchanged; responses name the model that actually served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.context import REQUEST_CONTEXT
from edge_agent.api.errors import ApiError
from edge_agent.api.limits import BodyLimits
from edge_agent.api.logprobs import chat_logprobs, completion_logprobs
from edge_agent.api.openai_models import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    FinishReason,
    FunctionCallOut,
    ModelCard,
    ModelList,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from edge_agent.api.streaming import SseWriter, respond
from edge_agent.api.structured import output_format
from edge_agent.api.tools import ParsedAnswer, ToolPlan
from edge_agent.errors import ModelNotFound
from edge_agent.serving import ROUTE_HEADER, ModelNames, ServingPipeline
from shared.messages import GenerateRequest, StreamEnd, TokenLogprob

__all__ = ["ChatShape", "OpenAIRoutes", "TextShape"]


@dataclass(frozen=True)
class ChatShape:
    """``chat.completion`` and ``chat.completion.chunk`` payloads for one response."""

    id: str
    created: int
    model: str
    include_usage: bool
    tools: ToolPlan | None = None
    """Set when the answer may be a tool call: text is held back and read as a whole."""
    _held: list[str] = field(default_factory=list)

    @property
    def _holds(self) -> bool:
        return self.tools is not None and self.tools.mode != "none"

    def _chunk(
        self,
        delta: ChatDelta,
        finish: FinishReason | None = None,
        logprobs: Sequence[TokenLogprob] = (),
    ) -> ChatCompletionChunk:
        choice = ChatChunkChoice(
            delta=delta, finish_reason=finish, logprobs=chat_logprobs(logprobs)
        )
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[choice]
        )

    def opening(self) -> Sequence[BaseModel]:
        return [self._chunk(ChatDelta(role="assistant", content=""))]

    def delta(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> BaseModel | None:
        if self._holds:
            self._held.append(text)
            return None
        return self._chunk(ChatDelta(content=text), logprobs=logprobs)

    def _answer(self, text: str, end: StreamEnd) -> tuple[ParsedAnswer, FinishReason]:
        if self.tools is None:
            return ParsedAnswer((), text), end.finish_reason
        answer = self.tools.parse(text)
        return answer, "tool_calls" if answer.calls else end.finish_reason

    def closing(self, end: StreamEnd) -> Sequence[BaseModel]:
        final: list[BaseModel] = []
        finish: FinishReason = end.finish_reason
        if self._holds:
            answer, finish = self._answer("".join(self._held), end)
            if answer.content:
                final.append(self._chunk(ChatDelta(content=answer.content)))
            if answer.calls:
                calls = [
                    ToolCallDelta(index=i, id=c.id, function=_function(c.name, c.arguments))
                    for i, c in enumerate(answer.calls)
                ]
                final.append(self._chunk(ChatDelta(tool_calls=calls)))
        final.append(self._chunk(ChatDelta(), finish))
        if self.include_usage:
            final.append(
                ChatCompletionChunk(
                    id=self.id,
                    created=self.created,
                    model=self.model,
                    choices=[],
                    usage=Usage.of(end),
                )
            )
        return final

    def error(self, error: ApiError) -> BaseModel:
        return error.body()

    def complete(
        self, text: str, end: StreamEnd, logprobs: Sequence[TokenLogprob] = ()
    ) -> BaseModel:
        answer, finish = self._answer(text, end)
        calls = [
            ToolCall(id=c.id, function=_function(c.name, c.arguments)) for c in answer.calls
        ] or None
        message = AssistantMessage(content=answer.content, tool_calls=calls)
        choice = ChatChoice(message=message, finish_reason=finish, logprobs=chat_logprobs(logprobs))
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[choice],
            usage=Usage.of(end),
        )


def _function(name: str, arguments: dict[str, object]) -> FunctionCallOut:
    return FunctionCallOut(name=name, arguments=json.dumps(arguments, ensure_ascii=False))


@dataclass(frozen=True)
class TextShape:
    """``text_completion`` payloads (streamed or not) for one response."""

    id: str
    created: int
    model: str
    include_usage: bool
    _sent: list[int] = field(default_factory=lambda: [0])
    """Characters of token text already reported, for ``logprobs.text_offset``."""

    def _completion(
        self,
        text: str,
        finish: FinishReason | None = None,
        usage: Usage | None = None,
        logprobs: Sequence[TokenLogprob] = (),
    ) -> Completion:
        scored = completion_logprobs(logprobs, self._sent[0])
        self._sent[0] += sum(len(s.token) for s in logprobs)
        choices = [CompletionChoice(text=text, finish_reason=finish, logprobs=scored)]
        return Completion(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )

    def opening(self) -> Sequence[BaseModel]:
        return []

    def delta(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> BaseModel:
        return self._completion(text, logprobs=logprobs)

    def closing(self, end: StreamEnd) -> Sequence[BaseModel]:
        final: list[BaseModel] = [self._completion("", end.finish_reason)]
        if self.include_usage:
            final.append(
                Completion(
                    id=self.id,
                    created=self.created,
                    model=self.model,
                    choices=[],
                    usage=Usage.of(end),
                )
            )
        return final

    def error(self, error: ApiError) -> BaseModel:
        return error.body()

    def complete(
        self, text: str, end: StreamEnd, logprobs: Sequence[TokenLogprob] = ()
    ) -> BaseModel:
        return self._completion(text, end.finish_reason, Usage.of(end), logprobs)


class OpenAIRoutes:
    """The ``/v1`` handlers, bound to one pipeline."""

    def __init__(
        self,
        pipeline: ServingPipeline,
        names: ModelNames,
        *,
        created: int,
        limits: BodyLimits | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._names = names
        self._created = created
        self._limits = limits or BodyLimits()

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat_completions)
        router.add_post("/v1/completions", self.completions)
        router.add_get("/v1/models", self.models)
        router.add_get("/v1/models/{model:.+}", self.model)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        ctx.request_id = f"chatcmpl-{ctx.request_id}"
        body = await read_model(request, ChatCompletionRequest)
        body.refuse_unsupported()
        self._limits.check_stop(body.stop, param="stop")
        requested = self._names.requested_route(body.model, request.headers.get(ROUTE_HEADER))
        tools = ToolPlan.of(body.tools, body.tool_choice)
        messages = body.chat_messages()
        output = output_format(body.response_format)
        if tools is not None:
            messages, output = tools.with_tools(messages), tools.output()
        generate = GenerateRequest(
            request_id=ctx.request_id, messages=messages, params=body.sampling(), output=output
        )
        async with self._pipeline.serve(generate, requested, ctx.report) as served:
            shape = ChatShape(
                ctx.request_id, ctx.created, served.model, body.include_usage, tools=tools
            )
            return await respond(request, ctx, served, shape, SseWriter, stream=body.stream)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        ctx.request_id = f"cmpl-{ctx.request_id}"
        body = await read_model(request, CompletionRequest)
        body.refuse_unsupported()
        self._limits.check_stop(body.stop, param="stop")
        requested = self._names.requested_route(body.model, request.headers.get(ROUTE_HEADER))
        generate = GenerateRequest(
            request_id=ctx.request_id, prompt=body.prompt_text(), params=body.sampling()
        )
        async with self._pipeline.serve(generate, requested, ctx.report) as served:
            shape = TextShape(ctx.request_id, ctx.created, served.model, body.include_usage)
            return await respond(request, ctx, served, shape, SseWriter, stream=body.stream)

    async def models(self, request: web.Request) -> web.Response:
        cards = [ModelCard(id=i, created=self._created) for i in self._names.ids()]
        return json_response(ModelList(data=cards))

    async def model(self, request: web.Request) -> web.Response:
        """One name ``/v1/models`` lists, or any other a request may use (the workers'
        model name); an unknown one is a 404 ``model_not_found``."""
        model = request.match_info["model"]
        if not self._names.known(model):
            raise ModelNotFound(model)
        return json_response(ModelCard(id=model, created=self._created))
