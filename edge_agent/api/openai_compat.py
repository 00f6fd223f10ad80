"""OpenAI-compatible endpoints: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

Each generation handler does the same four steps: name the response, parse the body,
ask the serving pipeline for an open stream, and ``respond()`` with this dialect's shapes.
Bodies and shapes follow OpenAI's API reference closely enough that the official SDK,
LangChain and Open WebUI work unchanged; responses name the model that actually served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from aiohttp import web
from pydantic import BaseModel

from edge_agent.api.bodies import json_response, read_model
from edge_agent.api.context import REQUEST_CONTEXT
from edge_agent.api.errors import ApiError
from edge_agent.api.limits import BodyLimits
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
    ModelCard,
    ModelList,
    Usage,
)
from edge_agent.api.streaming import SseWriter, respond
from edge_agent.serving import ROUTE_HEADER, ModelNames, ServingPipeline
from shared.messages import GenerateRequest, StreamEnd

__all__ = ["ChatShape", "OpenAIRoutes", "TextShape"]


@dataclass(frozen=True)
class ChatShape:
    """``chat.completion`` and ``chat.completion.chunk`` payloads for one response."""

    id: str
    created: int
    model: str
    include_usage: bool

    constant_delta: ClassVar[bool] = True
    """``delta`` depends on the text alone: streaming may serialize it once
    (``streaming.DeltaTemplate``)."""

    def _chunk(self, delta: ChatDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
        choice = ChatChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[choice]
        )

    def opening(self) -> Sequence[BaseModel]:
        return [self._chunk(ChatDelta(role="assistant", content=""))]

    def delta(self, text: str) -> BaseModel:
        return self._chunk(ChatDelta(content=text))

    def closing(self, end: StreamEnd) -> Sequence[BaseModel]:
        final: list[BaseModel] = [self._chunk(ChatDelta(), end.finish_reason)]
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

    def complete(self, text: str, end: StreamEnd) -> BaseModel:
        choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=end.finish_reason)
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[choice],
            usage=Usage.of(end),
        )


@dataclass(frozen=True)
class TextShape:
    """``text_completion`` payloads (streamed or not) for one response."""

    id: str
    created: int
    model: str
    include_usage: bool

    constant_delta: ClassVar[bool] = True
    """``delta`` depends on the text alone (``streaming.DeltaTemplate``)."""

    def _completion(
        self, text: str, finish: FinishReason | None = None, usage: Usage | None = None
    ) -> Completion:
        choices = [CompletionChoice(text=text, finish_reason=finish)]
        return Completion(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )

    def opening(self) -> Sequence[BaseModel]:
        return []

    def delta(self, text: str) -> BaseModel:
        return self._completion(text)

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

    def complete(self, text: str, end: StreamEnd) -> BaseModel:
        return self._completion(text, end.finish_reason, Usage.of(end))


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

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        ctx.request_id = f"chatcmpl-{ctx.request_id}"
        body = await read_model(request, ChatCompletionRequest)
        self._limits.check_stop(body.stop, param="stop")
        requested = self._names.requested_route(body.model, request.headers.get(ROUTE_HEADER))
        generate = GenerateRequest(
            request_id=ctx.request_id, messages=body.chat_messages(), params=body.sampling()
        )
        async with self._pipeline.serve(generate, requested, ctx.report) as served:
            shape = ChatShape(ctx.request_id, ctx.created, served.model, body.include_usage)
            return await respond(request, ctx, served, shape, SseWriter, stream=body.stream)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        ctx = request[REQUEST_CONTEXT]
        ctx.request_id = f"cmpl-{ctx.request_id}"
        body = await read_model(request, CompletionRequest)
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
