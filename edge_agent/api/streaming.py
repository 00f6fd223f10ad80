"""Sending an engine stream to an HTTP client: SSE (OpenAI) or NDJSON (Ollama).

A ``StreamShape`` says what each event looks like in one dialect; an ``EventWriter``
frames and writes it; ``respond()`` drives one through the other, or collects the whole
answer into one JSON body. Every event is written as it arrives (aiohttp's ``write``
hands it to the socket at once), so tokens reach the client as they are generated.

Failure handling is the same for every dialect: an engine error after the 200 went out
becomes an error event and the normal end of stream; a client that goes away makes
``write`` raise ``ConnectionResetError`` (or, with handler cancellation, cancels the
handler), and either way ``ServingPipeline.serve`` closes the engine stream, which
stops generation. A ``Failover`` event becomes a note where the format has room for one
(SSE: a comment line no client parses as data).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol, Self

from aiohttp import web
from pydantic import BaseModel

from edge_agent.api.bodies import json_response
from edge_agent.api.context import CLIENT_CLOSED, RequestContext
from edge_agent.api.errors import ApiError, api_error
from edge_agent.errors import EdgeError, GenerationFailed
from edge_agent.serving import Failover, Served
from shared.messages import StreamEnd, TokenChunk, TokenLogprob

__all__ = ["EventWriter", "NdjsonWriter", "SseWriter", "StreamShape", "respond"]

log = logging.getLogger(__name__)


class StreamShape(Protocol):
    """One dialect's payloads for one response."""

    def opening(self) -> Sequence[BaseModel]:
        """Events sent before the first token (OpenAI chat: the role delta)."""

    def delta(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> BaseModel | None:
        """The event carrying newly generated ``text`` (and its tokens' ``logprobs``, when
        the request asked); ``None`` to send nothing yet (a tool call is held back until
        it is complete, then sent by ``closing``)."""

    def closing(self, end: StreamEnd) -> Sequence[BaseModel]:
        """Events sent once the engine is done (finish reason, usage)."""

    def error(self, error: ApiError) -> BaseModel:
        """The event reporting a failure mid-stream."""

    def complete(
        self, text: str, end: StreamEnd, logprobs: Sequence[TokenLogprob] = ()
    ) -> BaseModel:
        """The whole answer as one body, for a non-streaming request."""


class EventWriter(ABC):
    """Frames payloads onto a prepared ``StreamResponse``."""

    content_type: ClassVar[str]

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    @classmethod
    async def start(cls, request: web.Request, ctx: RequestContext) -> Self:
        """Send the status line and headers (``ctx``'s included)."""
        response = web.StreamResponse(
            status=200, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        response.content_type = cls.content_type
        ctx.apply(response)
        await response.prepare(request)
        return cls(response)

    async def send(self, payload: BaseModel) -> None:
        """Write one event. aiohttp hands it to the socket at once and makes this wait
        (drain) when the client reads slower than tokens come, so nothing piles up."""
        await self.response.write(self._frame(payload.model_dump_json().encode()))

    async def finish(self) -> None:
        """End the stream normally."""
        await self.response.write_eof()

    async def failover(self, failover: Failover) -> None:
        """Report that the stream moved, where the format has room for a note no client
        parses as data (SSE: a comment line). NDJSON has none: there, only the metrics
        and the final line's ``x_tandem_failovers`` say it."""
        return None

    @staticmethod
    @abstractmethod
    def _frame(data: bytes) -> bytes: ...


class SseWriter(EventWriter):
    """Server-sent events, ending with OpenAI's ``data: [DONE]`` sentinel."""

    content_type = "text/event-stream"

    @staticmethod
    def _frame(data: bytes) -> bytes:
        return b"data: " + data + b"\n\n"

    async def finish(self) -> None:
        await self.response.write(b"data: [DONE]\n\n")
        await super().finish()

    async def failover(self, failover: Failover) -> None:
        note = f": x-tandem-failover to={failover.to.value} after_tokens={failover.after_tokens}"
        await self.response.write(note.encode() + b"\n\n")


class NdjsonWriter(EventWriter):
    """One JSON object per line (Ollama's streaming format)."""

    content_type = "application/x-ndjson"

    @staticmethod
    def _frame(data: bytes) -> bytes:
        return data + b"\n"


async def _collect(served: Served) -> tuple[str, StreamEnd, list[TokenLogprob]]:
    parts: list[str] = []
    scored: list[TokenLogprob] = []
    async for event in served:
        if isinstance(event, TokenChunk):
            parts.append(event.text)
            scored.extend(event.logprobs)
    if served.end is None:  # pragma: no cover - Served raises before this
        raise GenerationFailed("the engine stream ended without a StreamEnd")
    return "".join(parts), served.end, scored


async def _pump(served: Served, shape: StreamShape, writer: EventWriter) -> None:
    for payload in shape.opening():
        await writer.send(payload)
    async for event in served:
        if isinstance(event, Failover):
            await writer.failover(event)
        elif isinstance(event, TokenChunk):
            held = shape.delta(event.text, event.logprobs) if event.text or event.logprobs else None
            if held is not None:
                await writer.send(held)
        else:
            for payload in shape.closing(event):
                await writer.send(payload)


async def respond(
    request: web.Request,
    ctx: RequestContext,
    served: Served,
    shape: StreamShape,
    writer_class: type[EventWriter],
    *,
    stream: bool,
) -> web.StreamResponse:
    """Answer ``request`` from ``served``: one JSON body, or a stream of events."""
    if not stream:
        text, end, scored = await _collect(served)
        return json_response(shape.complete(text, end, scored))
    writer = await writer_class.start(request, ctx)
    try:
        try:
            await _pump(served, shape, writer)
        except ConnectionResetError:
            raise
        except Exception as exc:  # the 200 is out: report in-band, then end normally
            error = api_error(exc, request)
            if isinstance(exc, EdgeError):
                log.warning("request %s: stream failed: %s", ctx.request_id, error.code)
            else:
                log.exception("request %s: stream failed", ctx.request_id)
            ctx.status = error.status
            await writer.send(shape.error(error))
        await writer.finish()
    except ConnectionResetError:
        ctx.status = CLIENT_CLOSED
        log.debug("request %s: client went away mid-stream", ctx.request_id)
    return writer.response
