"""``OpenAIBackend``: the worker in front of an OpenAI-compatible engine on its machine.

Full-size models are served on GPUs by vLLM, SGLang or llama.cpp's ``llama-server``, each
with an OpenAI-compatible HTTP API and continuous batching. The worker streams that API's
SSE into data-channel frames as the chunks arrive; closing a stream (the edge cancelled,
the stream failed over) closes the upstream request, and the engine stops generating.
Capacity is the engine's: up to ``max_concurrency`` streams run at once, ``max_queue``
more wait, the rest are refused as overloaded so the edge goes elsewhere at once.

Errors keep their meaning across the hop: an engine that is unreachable or answers 429
or 503 is *unavailable* (retryable elsewhere), a 4xx is the request's fault (not
retried; a prompt past the context says so), a 5xx or a stream that breaks is a failed
generation (retried elsewhere from the text delivered so far).

Structured output (``GenerateRequest.output``: JSON schemas and tool calls) is the
engine's own guided decoding, asked for with ``response_format``: ``json_schema`` for vLLM,
SGLang and llama-server, the older ``json_object`` + ``schema`` form for other engines
(``llama_cpp.server`` knows only that one; ``StructuredStyle``). An engine that refuses
it says so in a 4xx, passed on as the request's fault; one that ignores it is caught
here: a constrained answer that is not JSON fails the stream, naming the cause, rather
than reach a client that relies on it parsing.

A resumed stream (``GenerateRequest.continuation``) must go on exactly where the text
stopped. How depends on the engine (``Continuation``); with none that works, the worker
refuses such a request as unavailable, and the edge resumes it elsewhere, rather than
let an engine start a new answer that repeats the old one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from cloud_worker.backends.base import Backend, BackendEvent
from cloud_worker.backends.health import UpstreamHealth
from cloud_worker.backends.openai_body import Continuation, StructuredStyle, request_body
from cloud_worker.errors import BackendError, BackendUnavailable, UpstreamContextTooLong
from inference import InferenceError
from inference.templates import ChatTemplate
from shared.messages import MAX_TOP_LOGPROBS, GenerateRequest, StreamEnd, TokenChunk, TokenLogprob

__all__ = [
    "Continuation",
    "OpenAIBackend",
    "StructuredStyle",
    "UpstreamConfig",
    "refusal",
    "request_body",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the engine is and how to use it; every field is a worker setting."""

    url: str
    """The engine's OpenAI base URL, ending in ``/v1``."""
    model: str | None = None
    """The engine's model to use and advertise (``None``: every model it lists)."""
    api_key: str | None = None
    max_concurrency: int = 16
    max_queue: int = 16
    continuation: Continuation = Continuation.AUTO
    chat_template: ChatTemplate | None = None
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 300.0
    """An engine may queue a request behind a full batch for a while."""
    token_timeout_s: float = 60.0


class OpenAIBackend(Backend):
    """Streams generations from an OpenAI-compatible engine."""

    def __init__(self, config: UpstreamConfig, health: UpstreamHealth) -> None:
        self._config = config
        self._health = health
        self._session: aiohttp.ClientSession | None = None
        self._models: tuple[str, ...] = ()
        self._continuation = config.continuation
        self._structured = StructuredStyle.JSON_SCHEMA
        self._running = 0
        self._waiting = 0
        self._slots = asyncio.Semaphore(config.max_concurrency)

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    @property
    def capacity(self) -> int:
        return self._config.max_concurrency

    @property
    def active(self) -> int:
        return self._running + self._waiting

    @property
    def ready(self) -> bool:
        return self._session is not None and self._health.healthy

    @property
    def state(self) -> Literal["loading", "ready", "down"]:
        if not self._models:
            return "loading"
        return "ready" if self.ready else "down"

    def on_health_change(self, listener: Callable[[bool], None]) -> None:
        self._health.on_change(listener)

    @property
    def continuation(self) -> Continuation:
        """The resumption method in use (``AUTO`` resolved at load)."""
        return self._continuation

    async def load(self) -> None:
        """Wait for the engine to answer, learn its models and how it resumes a turn."""
        cfg = self._config
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        timeout = aiohttp.ClientTimeout(sock_connect=cfg.connect_timeout_s)
        connector = aiohttp.TCPConnector(limit=cfg.max_concurrency + 4)
        self._session = aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector)
        listed = await self._health.wait_until_up(self._session)
        if cfg.model is not None:
            if cfg.model not in listed:
                log.warning(
                    "the engine lists %s, not %s; using %s anyway",
                    ", ".join(listed) or "no model",
                    cfg.model,
                    cfg.model,
                )
            self._models = (cfg.model,)
        else:
            self._models = tuple(listed)
        if not self._models:
            raise BackendUnavailable(f"the engine at {cfg.url} serves no model")
        detected = await self._detect_continuation(self._session)
        if self._continuation is Continuation.AUTO:
            self._continuation = detected
        if detected not in (Continuation.CHAT, Continuation.PREFILL):
            # Not vLLM, SGLang nor llama-server: maybe llama-cpp-python's server, which
            # takes only the older form of response_format.
            self._structured = StructuredStyle.JSON_OBJECT
        log.info(
            "engine at %s serves %s; streams resumed by %s",
            cfg.url,
            ", ".join(self._models),
            self._continuation.value,
        )
        self._health.start(self._session)

    async def _detect_continuation(self, session: aiohttp.ClientSession) -> Continuation:
        """What the engine says it is, through endpoints only it has."""
        root = self._config.url.rstrip("/").removesuffix("/v1")
        probes = (
            ("/version", Continuation.CHAT, "vLLM"),
            ("/server_info", Continuation.CHAT, "SGLang"),
            ("/get_server_info", Continuation.CHAT, "SGLang"),
            ("/props", Continuation.PREFILL, "llama-server"),
        )
        for path, method, name in probes:
            try:
                async with session.get(root + path) as resp:
                    if resp.status == 200 and isinstance(await resp.json(content_type=None), dict):
                        log.info("the engine answers %s like %s", path, name)
                        return method
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
        if self._config.chat_template is not None:
            return Continuation.COMPLETIONS
        log.warning(
            "cannot tell which engine serves %s, and no --upstream-chat-template is set: "
            "streams that fail over will not resume here (the edge resumes them elsewhere)",
            self._config.url,
        )
        return Continuation.REFUSE

    async def stream(self, request: GenerateRequest) -> AsyncGenerator[BackendEvent, None]:
        if not self.ready or self._session is None:
            raise BackendUnavailable("the engine is not answering")
        path, body = self._body(request)
        if self._slots.locked() and self._waiting >= self._config.max_queue:
            raise BackendUnavailable(f"{self._waiting} requests already waiting for the engine")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            async with aclosing(self._generate(self._session, path, body, request)) as events:
                async for event in events:
                    yield event
        finally:
            self._running -= 1
            self._slots.release()

    def _body(self, request: GenerateRequest) -> tuple[str, dict[str, Any]]:
        return request_body(
            request,
            models=self._models,
            continuation=self._continuation,
            template=self._config.chat_template,
            structured=self._structured,
        )

    async def _generate(
        self,
        session: aiohttp.ClientSession,
        path: str,
        body: dict[str, Any],
        request: GenerateRequest,
    ) -> AsyncGenerator[BackendEvent, None]:
        cfg = self._config
        rid = request.request_id
        url = cfg.url.rstrip("/") + path
        try:
            resp = await session.post(url, json=body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._health.failed(exc)
            unreachable = f"the engine is unreachable: {exc.__class__.__name__}"
            raise BackendUnavailable(unreachable) from exc
        try:
            if resp.status != 200:
                raise await _refusal(resp)
            chunks = 0
            finish: Literal["stop", "length"] = "stop"
            usage: dict[str, Any] = {}
            answer: list[str] = []
            async for data in _sse(resp, cfg.first_token_timeout_s, cfg.token_timeout_s):
                if "error" in data:
                    raise BackendError(f"the engine failed mid-stream: {_message(data)}")
                if isinstance(data.get("usage"), dict):
                    usage = data["usage"]
                for choice in data.get("choices") or []:
                    text = _choice_text(choice)
                    scored = _choice_logprobs(choice) if request.params.logprobs is not None else ()
                    if text or scored:
                        chunks += 1
                        if request.output is not None:
                            answer.append(text)
                        yield TokenChunk(request_id=rid, text=text, n_tokens=1, logprobs=scored)
                    finish = _finish(choice.get("finish_reason")) or finish
            if request.output is not None and finish == "stop":
                _check_json("".join(answer))
            completion = int(usage.get("completion_tokens") or chunks)
            if completion > chunks:  # the engine packed several tokens into a chunk
                yield TokenChunk(request_id=rid, text="", n_tokens=completion - chunks)
            yield StreamEnd(
                request_id=rid,
                finish_reason=finish,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=max(completion, chunks),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"the engine's stream broke: {exc.__class__.__name__}") from exc
        finally:
            resp.close()  # unfinished: closing the connection stops the engine's generation

    async def aclose(self) -> None:
        await self._health.aclose()
        if self._session is not None:
            await self._session.close()


def _check_json(text: str) -> None:
    """A constrained answer that does not parse: the engine ignored ``response_format``."""
    try:
        json.loads(text)
    except ValueError as exc:
        raise InferenceError(
            "the worker's engine did not honour response_format (its answer is not JSON); "
            "it needs guided decoding (vLLM, SGLang, llama.cpp)"
        ) from exc


async def _sse(
    resp: aiohttp.ClientResponse, first_timeout_s: float, timeout_s: float
) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of an SSE response, until ``[DONE]``. A stream that ends before
    it broke (llama_cpp.server, for one, reports a prompt past its context that way, after
    its 200): that is a failed generation, never an empty answer."""
    wait = first_timeout_s
    buffer = b""
    while True:
        try:
            async with asyncio.timeout(wait):
                line = await resp.content.readline()
        except TimeoutError as exc:
            raise BackendError(f"the engine sent nothing for {wait:g} s") from exc
        if not line:
            raise BackendError("the engine's stream ended before [DONE]")
        wait = timeout_s
        buffer += line
        if not line.endswith(b"\n"):
            continue
        text, buffer = buffer.strip(), b""
        if not text.startswith(b"data:"):
            continue  # comments, event names, keep-alives
        payload = text[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise BackendError("the engine sent an event that is not JSON") from exc
        if isinstance(data, dict):
            yield data


def _choice_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return str(delta.get("content") or "")
    return str(choice.get("text") or "")


def _choice_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """A chunk's token logprobs, in chat's shape or the completions' legacy one; entries
    an engine leaves without a number (some give none for the first token) are skipped."""
    found = choice.get("logprobs")
    if not isinstance(found, dict):
        return ()
    scored: list[TokenLogprob] = []
    if isinstance(found.get("content"), list):
        for entry in found["content"]:
            if isinstance(entry, dict) and isinstance(entry.get("logprob"), int | float):
                top = [
                    (str(t.get("token", "")), float(t["logprob"]))
                    for t in entry.get("top_logprobs") or []
                    if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
                ]
                scored.append(_scored(str(entry.get("token", "")), entry["logprob"], top))
        return tuple(scored)
    tokens, values = found.get("tokens") or [], found.get("token_logprobs") or []
    tops = found.get("top_logprobs") or [None] * len(tokens)
    for token, value, top in zip(tokens, values, tops, strict=False):
        if isinstance(value, int | float):
            pairs = [
                (str(t), float(v)) for t, v in (top or {}).items() if isinstance(v, int | float)
            ]
            scored.append(_scored(str(token), value, pairs))
    return tuple(scored)


def _scored(token: str, logprob: float, top: list[tuple[str, float]]) -> TokenLogprob:
    def clean(text: str) -> str:  # an engine's token text may hold a lone surrogate
        return text.encode("utf-8", "replace").decode("utf-8")

    pairs = tuple((clean(t), v) for t, v in top[:MAX_TOP_LOGPROBS])
    return TokenLogprob(token=clean(token), logprob=float(logprob), top=pairs)


def _finish(reason: object) -> Literal["stop", "length"] | None:
    if reason is None:
        return None
    return "length" if reason == "length" else "stop"


def _message(data: dict[str, Any]) -> str:
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error or data.get("detail") or data)[:500]


async def _refusal(resp: aiohttp.ClientResponse) -> Exception:
    try:
        data: Any = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        data = {}
    return refusal(resp.status, _message(data) if isinstance(data, dict) else str(data)[:500])


def refusal(status: int, message: str) -> Exception:
    """An engine's non-200 answer as the worker error that keeps its meaning."""
    if status in (408, 429, 502, 503):
        return BackendUnavailable(f"the engine answered {status}: {message}")
    if 400 <= status < 500:
        if "context" in message.lower() or "too long" in message.lower():
            return UpstreamContextTooLong(message)
        return InferenceError(f"the engine refused the request ({status}): {message}")
    return BackendError(f"the engine answered {status}: {message}")
