"""The edge agent's error tree; ``api/errors.py`` maps each class to an HTTP answer.

::

    EdgeError(TandemError)
    ├── RequestInvalid (400)        bad body, bad field; ``param`` names the field
    │   ├── ContextTooLong (400)    prompt does not fit the model's context
    │   └── PromptTooLong (400)     prompt above --max-prompt-tokens, whatever the route
    ├── RequestTooLarge (413)       the request would not fit the link to a worker
    ├── Unauthorized (401)          missing or wrong API key
    ├── Forbidden (403)             a Host or Origin this agent does not serve
    ├── UnsupportedMediaType (415)  a POST body that is not application/json
    ├── NotFound (404)              unknown route
    │   └── ModelNotFound (404)     unknown model name
    ├── Overloaded (429)            local queue full; ``retry_after_s``
    ├── TransportError              a path to a worker failed (never seen above peers/)
    │   ├── ConnectTimeout
    │   ├── PathFailed
    │   └── TransportClosed
    ├── NoPeerAvailable (503)       no worker reachable for the cloud route
    ├── RequestTimeout (504)        past --request-timeout-s; generation cancelled
    └── EngineError
        ├── ModelNotLoaded (503)
        └── GenerationFailed (502)  the engine started but could not finish
"""

from __future__ import annotations

from shared.errors import TandemError

__all__ = [
    "ConnectTimeout",
    "ContextTooLong",
    "EdgeError",
    "EngineError",
    "Forbidden",
    "GenerationFailed",
    "ModelNotFound",
    "ModelNotLoaded",
    "NoPeerAvailable",
    "NotFound",
    "Overloaded",
    "PathFailed",
    "PromptTooLong",
    "RequestInvalid",
    "RequestTimeout",
    "RequestTooLarge",
    "TransportClosed",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
]


class EdgeError(TandemError):
    """Base of the edge's errors; ``request_id`` is set by the layer that knows it."""

    request_id: str | None = None


class RequestInvalid(EdgeError):
    """The client's request is malformed; ``param`` names the offending field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextTooLong(RequestInvalid):
    """The prompt does not fit in the serving model's context window."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="messages")


class PromptTooLong(RequestInvalid):
    """The prompt is longer than this agent accepts at all (``--max-prompt-tokens``).

    Distinct from ``ContextTooLong``: a prompt too long for the local model may still go
    to the cloud; one above this limit is refused before routing, so that one request
    cannot tie up a worker (or fill the edge's memory) with a book.
    """

    def __init__(self, message: str, *, param: str = "messages") -> None:
        super().__init__(message, param=param)


class RequestTooLarge(EdgeError):
    """The request, as sent to a worker, would exceed the protocol's message limit
    (``shared.codec.MAX_MESSAGE_BYTES``): refused whatever the route, so that what the
    edge accepts always fits the link (a worker drops a link that carries more)."""


class Forbidden(EdgeError):
    """A request this agent refuses to serve whatever its key: a ``Host`` it does not
    answer to (DNS rebinding) or a cross-origin ``Origin`` not in ``--cors-origin``."""


class UnsupportedMediaType(EdgeError):
    """A POST whose body is not declared ``application/json``: web pages may send
    ``text/plain`` or forms to any address without a CORS preflight."""


class RequestTimeout(EdgeError):
    """The request outlived ``--request-timeout-s`` (queue wait and generation together):
    a client that never reads a slow answer must not hold a model slot forever."""


class Unauthorized(EdgeError):
    """Missing or wrong API key."""


class NotFound(EdgeError):
    """Unknown model or route."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ModelNotFound(NotFound):
    """The request names a model this agent does not serve."""

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist", param="model")


class Overloaded(EdgeError):
    """Too many requests queued; the client should retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TransportError(EdgeError):
    """A path to a worker failed."""


class ConnectTimeout(TransportError):
    """Signaling or ICE did not produce an open channel in time."""


class PathFailed(TransportError):
    """The path could not be established (ICE failed, signaling refused)."""


class TransportClosed(TransportError):
    """The channel closed while in use."""


class NoPeerAvailable(EdgeError):
    """No cloud worker can be reached."""


class EngineError(EdgeError):
    """An engine could not serve the request."""


class ModelNotLoaded(EngineError):
    """The local model is still loading (or failed to)."""


class GenerationFailed(EngineError):
    """Generation started but could not finish."""
