"""The one table from an error to its HTTP answer, and the answer's two wire shapes.

Every failure a client can see goes through ``api_error()``: ``EdgeError`` subclasses by
``ERROR_TABLE`` (most specific class first, by walking the MRO), aiohttp's own HTTP
errors (unknown route, wrong method, body too large) by status, anything else as a
bare 500 that says nothing about internals. The result renders as OpenAI's
``{"error": {"message", "type", "param", "code"}}`` or, under ``/api/``, Ollama's
``{"error": "message"}``.

One leaf lives here rather than in ``edge_agent.errors`` because only the HTTP layer
raises it and it differs from its parent only in the code a client sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aiohttp import web
from pydantic import BaseModel

from edge_agent.errors import (
    ContextTooLong,
    EdgeError,
    EngineError,
    Forbidden,
    GenerationFailed,
    ModelNotFound,
    ModelNotLoaded,
    NoPeerAvailable,
    NotFound,
    Overloaded,
    PromptTooLong,
    RequestInvalid,
    RequestTimeout,
    RequestTooLarge,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
)

__all__ = [
    "ERROR_TABLE",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "ErrorSpec",
    "InvalidJson",
    "ModelNotFound",
    "OllamaErrorBody",
    "api_error",
]


class InvalidJson(RequestInvalid):
    """The body is not JSON (or not a JSON object)."""


@dataclass(frozen=True)
class ErrorSpec:
    """How one error class looks on the wire."""

    status: int
    type: str
    code: str


_INVALID = "invalid_request_error"
_SERVER = "server_error"

ERROR_TABLE: Mapping[type[EdgeError], ErrorSpec] = MappingProxyType(
    {
        InvalidJson: ErrorSpec(400, _INVALID, "invalid_json"),
        ContextTooLong: ErrorSpec(400, _INVALID, "context_length_exceeded"),
        PromptTooLong: ErrorSpec(400, _INVALID, "prompt_too_long"),
        RequestInvalid: ErrorSpec(400, _INVALID, "invalid_request"),
        Unauthorized: ErrorSpec(401, _INVALID, "invalid_api_key"),
        Forbidden: ErrorSpec(403, _INVALID, "forbidden"),
        RequestTooLarge: ErrorSpec(413, _INVALID, "request_too_large"),
        UnsupportedMediaType: ErrorSpec(415, _INVALID, "unsupported_media_type"),
        ModelNotFound: ErrorSpec(404, _INVALID, "model_not_found"),
        NotFound: ErrorSpec(404, _INVALID, "not_found"),
        Overloaded: ErrorSpec(429, "rate_limit_error", "overloaded"),
        NoPeerAvailable: ErrorSpec(503, _SERVER, "cloud_unavailable"),
        RequestTimeout: ErrorSpec(504, _SERVER, "timeout"),
        TransportError: ErrorSpec(502, _SERVER, "cloud_path_failed"),
        ModelNotLoaded: ErrorSpec(503, _SERVER, "model_loading"),
        GenerationFailed: ErrorSpec(502, _SERVER, "generation_failed"),
        EngineError: ErrorSpec(500, _SERVER, "engine_error"),
        EdgeError: ErrorSpec(500, _SERVER, "internal_error"),
    }
)
"""EdgeError class -> wire answer. A subclass without an entry takes its nearest
ancestor's; ``EdgeError`` itself closes the table so every edge error has an answer."""

_HTTP_CODES: Mapping[int, str] = MappingProxyType(
    {
        404: "not_found",
        405: "method_not_allowed",
        413: "request_too_large",
    }
)


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error envelope, also sent as an SSE event when a stream fails."""

    error: ErrorDetail


class OllamaErrorBody(BaseModel):
    """Ollama's error envelope."""

    error: str


@dataclass(frozen=True)
class ApiError:
    """A failure ready to be sent: status, OpenAI fields and extra headers."""

    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> ErrorBody:
        """The OpenAI-shaped body."""
        return ErrorBody(
            error=ErrorDetail(
                message=self.message, type=self.type, param=self.param, code=self.code
            )
        )

    def ollama_body(self) -> OllamaErrorBody:
        """The Ollama-shaped body. It has no ``param``: the message names the field."""
        if self.param and self.param not in self.message:
            return OllamaErrorBody(error=f"{self.param}: {self.message}")
        return OllamaErrorBody(error=self.message)

    def response(self, *, ollama: bool = False) -> web.Response:
        """A complete JSON response for this error."""
        body = self.ollama_body() if ollama else self.body()
        return web.Response(
            status=self.status,
            body=body.model_dump_json().encode(),
            content_type="application/json",
            headers=dict(self.headers),
        )


def _spec(exc: EdgeError) -> ErrorSpec:
    for cls in type(exc).__mro__:
        spec = ERROR_TABLE.get(cls)
        if spec is not None:
            return spec
    raise AssertionError("unreachable: EdgeError is in ERROR_TABLE")  # pragma: no cover


def _from_edge_error(exc: EdgeError) -> ApiError:
    spec = _spec(exc)
    headers: dict[str, str] = {}
    message = str(exc) or spec.code
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, exc.retry_after_s))
    elif isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, ModelNotLoaded):
        headers["Retry-After"] = "1"
        message = "The local model is not loaded yet; retry shortly."
    elif spec.status >= 500 and not isinstance(exc, NoPeerAvailable | RequestTimeout):
        # Engine and transport messages carry library text and paths: not for clients.
        message = "The server could not complete the request."
    param = exc.param if isinstance(exc, RequestInvalid | NotFound) else None
    return ApiError(spec.status, message, spec.type, spec.code, param, headers)


def _from_http_exception(exc: web.HTTPException, request: web.BaseRequest) -> ApiError:
    status = exc.status
    code = _HTTP_CODES.get(status, exc.reason.lower().replace(" ", "_"))
    headers: dict[str, str] = {}
    if status == 404:
        message = f"Unknown request URL: {request.method} {request.path}"
    elif status == 405:
        message = f"Method {request.method} is not allowed for {request.path}"
        if "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
    elif status == 413:
        limit = request.client_max_size
        message = f"The request body is larger than the {limit} bytes this server accepts."
    else:
        message = exc.reason
    error_type = _SERVER if status >= 500 else _INVALID
    return ApiError(status, message, error_type, code, None, headers)


def internal_error() -> ApiError:
    """The answer for an exception nobody mapped: says nothing about what went wrong."""
    return ApiError(500, "The server had an internal error.", _SERVER, "internal_error")


def api_error(exc: BaseException, request: web.BaseRequest) -> ApiError:
    """How ``exc`` (raised while serving ``request``) is answered."""
    if isinstance(exc, EdgeError):
        return _from_edge_error(exc)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return _from_http_exception(exc, request)
    return internal_error()
