"""``GET /openapi.json``: an OpenAPI 3.1 description of exactly the routes this app serves.

The document is derived, never hand-written, so that it cannot drift from the code:
request and response schemas are the JSON Schemas of the pydantic models the handlers
parse and answer with (pydantic emits draft 2020-12, which is what OpenAPI 3.1 speaks),
and the list of operations is read off the app's router. ``OPERATIONS`` only adds what a
router does not know (which model a route takes and returns); a route without an entry
there fails ``build_openapi``, so a new route cannot ship undocumented.

It is built once per app, because it depends on that app's configuration: the API key
(whether bearer auth is required), and whether a cloud is configured (whether
``X-Tandem-Route: cloud`` is a route this agent can serve).

The document is served without the API key, like ``/healthz``: it describes the API and
holds no data, and the clients that read it (SDK generators, API explorers, fuzzers) read
it to learn how to authenticate in the first place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from edge_agent.api.browser import GUARD_EXEMPT_PATHS
from edge_agent.api.context import (
    PATH_HEADER,
    REQUEST_ID_HEADER,
    ROUTE_HEADER,
    ROUTE_REASON_HEADER,
    SERVED_BY_HEADER,
)
from edge_agent.api.embeddings import (
    EmbeddingList,
    EmbeddingRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbeddingsResponse,
    OllamaEmbedRequest,
    OllamaEmbedResponse,
)
from edge_agent.api.errors import ErrorBody, OllamaErrorBody
from edge_agent.api.health import Health, Loading
from edge_agent.api.llama_server import (
    Detokenized,
    DetokenizeRequest,
    LlamaHealth,
    LlamaLoading,
    Props,
    Tokenized,
    TokenizeRequest,
)
from edge_agent.api.middleware import AUTH_EXEMPT_PATHS, OLLAMA_PREFIX
from edge_agent.api.ollama_compat import OllamaChatRequest, OllamaChunk, OllamaGenerateRequest
from edge_agent.api.ollama_probe import (
    OllamaRunning,
    OllamaShowRequest,
    OllamaShowResponse,
    OllamaTags,
    OllamaVersion,
)
from edge_agent.api.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ModelCard,
    ModelList,
)
from edge_agent.api.status import StatusDoc
from edge_agent.router import Reason, Route

__all__ = [
    "OPENAPI_PATH",
    "OPERATIONS",
    "OpenApiRoute",
    "Operation",
    "app_version",
    "build_openapi",
]

OPENAPI_PATH = "/openapi.json"

_SCHEMA_MODE: JsonSchemaMode = "validation"
"""Responses too are described in validation mode: their only custom serializers drop
unset fields, which a validation schema already allows, whereas a serialization schema
of such a model degrades to "any object"."""

_BEARER = "bearerAuth"
_JSON = "application/json"
_SSE = "text/event-stream"
_NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Operation:
    """What the router cannot say about one route: its models and media types."""

    summary: str
    ok: type[BaseModel] | None
    """The 200 body as JSON; ``None`` when it is not a model (text, a free-form object)."""
    ok_media: str = _JSON
    request: type[BaseModel] | None = None
    """The JSON body the route parses; routes with one generate text, so they also read
    ``X-Tandem-Route`` and can answer every generation error."""
    chunk: type[BaseModel] | None = None
    """One event of a ``stream: true`` answer (SSE under ``/v1``, NDJSON under ``/api``)."""
    other: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    """Non-error answers besides 200 (``/healthz``'s 503 while loading)."""
    routed: bool = True
    """Whether a route with a body reads ``X-Tandem-Route`` (generations and embeddings
    do; ``/api/show`` and ``/tokenize`` do not)."""


_JS = "text/javascript"

OPERATIONS: Mapping[tuple[str, str], Operation] = MappingProxyType(
    {
        ("POST", "/v1/chat/completions"): Operation(
            "OpenAI chat completion",
            ChatCompletion,
            request=ChatCompletionRequest,
            chunk=ChatCompletionChunk,
        ),
        ("POST", "/v1/completions"): Operation(
            "OpenAI text completion", Completion, request=CompletionRequest, chunk=Completion
        ),
        ("GET", "/v1/models"): Operation("Model names a request may use", ModelList),
        ("GET", "/v1/models/{model}"): Operation("One model name (404 if unknown)", ModelCard),
        ("POST", "/v1/embeddings"): Operation(
            "OpenAI embeddings (local model)", EmbeddingList, request=EmbeddingRequest
        ),
        ("POST", "/api/embed"): Operation(
            "Ollama embeddings (local model)", OllamaEmbedResponse, request=OllamaEmbedRequest
        ),
        ("POST", "/api/embeddings"): Operation(
            "Ollama legacy embedding (local model)",
            OllamaEmbeddingsResponse,
            request=OllamaEmbeddingsRequest,
        ),
        ("GET", "/"): Operation("Liveness text, as Ollama's", None, ok_media="text/plain"),
        ("POST", "/api/show"): Operation(
            "Ollama model description (from the GGUF)",
            OllamaShowResponse,
            request=OllamaShowRequest,
            routed=False,
        ),
        ("GET", "/api/ps"): Operation("Ollama loaded models", OllamaRunning),
        ("GET", "/health"): Operation(
            "llama-server readiness", LlamaHealth, other={503: LlamaLoading}
        ),
        ("GET", "/props"): Operation("llama-server properties (n_ctx)", Props),
        ("POST", "/tokenize"): Operation(
            "llama-server tokenize (local model)",
            Tokenized,
            request=TokenizeRequest,
            routed=False,
        ),
        ("POST", "/detokenize"): Operation(
            "llama-server detokenize (local model)",
            Detokenized,
            request=DetokenizeRequest,
            routed=False,
        ),
        ("POST", "/api/chat"): Operation(
            "Ollama chat", OllamaChunk, request=OllamaChatRequest, chunk=OllamaChunk
        ),
        ("POST", "/api/generate"): Operation(
            "Ollama generate", OllamaChunk, request=OllamaGenerateRequest, chunk=OllamaChunk
        ),
        ("GET", "/api/tags"): Operation("Ollama model list", OllamaTags),
        ("GET", "/api/version"): Operation("Ollama API version claimed", OllamaVersion),
        ("GET", "/healthz"): Operation("Readiness", Health, other={503: Loading}),
        ("GET", "/metrics"): Operation("Prometheus metrics", None, ok_media="text/plain"),
        ("GET", "/status"): Operation("Status page (HTML)", None, ok_media="text/html"),
        ("GET", "/status/app.js"): Operation(
            "Status page script", None, ok_media="text/javascript"
        ),
        ("GET", "/status/app.css"): Operation("Status page style", None, ok_media="text/css"),
        ("GET", "/status.json"): Operation(
            "Status: models, cloud, workers, budget, recent requests", StatusDoc
        ),
        ("GET", OPENAPI_PATH): Operation("This document", None),
    }
)
"""(method, path) -> its description. aiohttp's implicit ``HEAD`` twin of each ``GET``
is left out: it answers the same headers with no body."""

_GENERATION_ERRORS: Mapping[int, str] = MappingProxyType(
    {
        400: "The body is not valid JSON, or asks for what this agent cannot serve "
        "(an invalid field, too long a prompt).",
        404: "The model is not one this agent serves.",
        413: "The body is larger than the server accepts, or the request would not fit "
        "the link to a cloud worker.",
        415: "The body is not declared as application/json.",
        429: "The local model's queue is full (see Retry-After).",
        502: "Generation failed, locally or on the cloud path.",
        503: "The cloud route was forced but no cloud is reachable, or the local model "
        "is still loading (see Retry-After).",
        504: "Nothing was generated within the agent's request timeout.",
    }
)


def _schemas(operations: Iterable[Operation]) -> tuple[dict[type[BaseModel], Any], Any]:
    """Each model's ``$ref``, and every schema they need, named as components."""
    models: dict[type[BaseModel], None] = dict.fromkeys([ErrorBody, OllamaErrorBody])
    for op in operations:
        for model in (op.request, op.ok, op.chunk, *op.other.values()):
            if model is not None:
                models[model] = None
    refs, defs = models_json_schema(
        [(m, _SCHEMA_MODE) for m in models], ref_template="#/components/schemas/{model}"
    )
    return {m: refs[(m, _SCHEMA_MODE)] for m in models}, defs.get("$defs", {})


def _headers(*, generation: bool) -> dict[str, Any]:
    names = [REQUEST_ID_HEADER]
    if generation:
        names += [SERVED_BY_HEADER, ROUTE_REASON_HEADER, PATH_HEADER]
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _component_headers() -> dict[str, Any]:
    return {
        REQUEST_ID_HEADER: {
            "description": "Identifies the request in the agent's logs; on every answer.",
            "required": True,
            "schema": {"type": "string"},
        },
        SERVED_BY_HEADER: {
            "description": "Which engine served the request (absent if refused before routing).",
            "schema": {"type": "string", "enum": [r.value for r in Route]},
        },
        ROUTE_REASON_HEADER: {
            "description": "Why the router chose that engine.",
            "schema": {"type": "string", "enum": [r.value for r in Reason]},
        },
        PATH_HEADER: {
            "description": "The network path of a cloud-served answer (direct, turn-udp, "
            "turn-tcp, relay, unknown).",
            "schema": {"type": "string"},
        },
    }


def _stream_content(path: str, chunk: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """One streamed event's schema: OpenAPI 3.1 has a stream's ``schema`` describe each
    event (an SSE event's ``data`` holds the JSON; an NDJSON line is the JSON)."""
    payload = {"anyOf": [chunk, error]}
    if path.startswith(OLLAMA_PREFIX):
        return {_NDJSON: {"schema": payload}}
    data = {
        "type": "string",
        "if": {"const": "[DONE]"},
        "else": {"contentMediaType": _JSON, "contentSchema": payload},
    }
    event = {"type": "object", "required": ["data"], "properties": {"data": data}}
    return {_SSE: {"schema": event}}


def _operation(
    method: str,
    path: str,
    op: Operation,
    refs: Mapping[type[BaseModel], Any],
    *,
    cloud: bool,
    api_key: bool,
) -> dict[str, Any]:
    ollama = path.startswith(OLLAMA_PREFIX)
    error_ref = refs[OllamaErrorBody if ollama else ErrorBody]
    generation = op.request is not None

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "headers": _headers(generation=False),
            "content": {_JSON: {"schema": error_ref}},
        }

    ok_schema = refs[op.ok] if op.ok is not None else {"type": "object"}
    if op.ok_media != _JSON:
        ok_schema = {"type": "string"}
    content = {op.ok_media: {"schema": ok_schema}}
    if op.chunk is not None:
        content.update(_stream_content(path, refs[op.chunk], error_ref))
    responses: dict[str, Any] = {
        "200": {"description": "OK", "headers": _headers(generation=generation), "content": content}
    }
    for status, model in op.other.items():
        responses[str(status)] = {
            "description": model.__doc__ or model.__name__,
            "headers": _headers(generation=False),
            "content": {_JSON: {"schema": refs[model]}},
        }
    if generation:
        for status, description in _GENERATION_ERRORS.items():
            responses[str(status)] = error(description)
    exempt = path in AUTH_EXEMPT_PATHS
    if api_key and not exempt:
        responses["401"] = error("Missing or invalid API key.")
    if path not in GUARD_EXEMPT_PATHS:
        responses["403"] = error(
            "A Host this agent does not answer to, or a web page's Origin not in --cors-origin."
        )
    responses["default"] = error("Any other failure, in this dialect's error shape.")

    described: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
        "summary": op.summary,
        "responses": responses,
    }
    if exempt:
        described["security"] = []
    if generation and op.routed:
        routes = ["local", "auto", "cloud"] if cloud else ["local", "auto"]
        described["parameters"] = [
            {
                "name": ROUTE_HEADER,
                "in": "header",
                "required": False,
                "description": "Overrides the route the model name implies (case-insensitive)."
                + ("" if cloud else " This agent has no cloud: 'cloud' answers 503."),
                "schema": {"type": "string", "enum": routes},
            }
        ]
    for name in re.findall(r"{(\w+)}", path):
        described.setdefault("parameters", []).append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if generation:
        assert op.request is not None
        described["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": refs[op.request]}},
        }
    return described


def app_version() -> str:
    try:
        return version("tandem")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0"


def build_openapi(
    routes: Iterable[web.AbstractRoute], *, cloud: bool, api_key: bool
) -> dict[str, Any]:
    """The document for an app serving ``routes``.

    Raises ``LookupError`` for a route ``OPERATIONS`` does not describe.
    """
    return _document(_described(routes), cloud=cloud, api_key=api_key)


def _described(routes: Iterable[web.AbstractRoute]) -> list[tuple[str, str, Operation]]:
    """(method, path, operation) of each route; ``LookupError`` for one ``OPERATIONS``
    does not describe."""
    found: list[tuple[str, str, Operation]] = []
    for route in routes:
        if route.method == "HEAD" or route.resource is None:
            continue
        key = (route.method, route.resource.canonical)
        op = OPERATIONS.get(key)
        if op is None:
            raise LookupError(f"no OpenAPI description for {key[0]} {key[1]}: add it to OPERATIONS")
        found.append((*key, op))
    return found


def _document(
    found: list[tuple[str, str, Operation]], *, cloud: bool, api_key: bool
) -> dict[str, Any]:
    refs, defs = _schemas(op for _, _, op in found)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in found:
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, op, refs, cloud=cloud, api_key=api_key
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Tandem edge agent",
            "version": app_version(),
            "description": "OpenAI- and Ollama-compatible API of a Tandem edge agent.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "headers": _component_headers(),
            "securitySchemes": {
                _BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The agent's --api-key; required only when it has one.",
                }
            },
        },
    }
    if api_key:
        document["security"] = [{_BEARER: []}]
    return document


class OpenApiRoute:
    """Serves the document of the app it is added to.

    Add it last: it documents the routes registered before it (itself included) and
    refuses, at build time, any it has no description for. The document itself (JSON
    schemas of every body: tens of milliseconds) is built on the first request for it,
    not before the agent's API listens.
    """

    def __init__(self, *, cloud: bool, api_key: bool) -> None:
        self._cloud = cloud
        self._api_key = api_key
        self._found: list[tuple[str, str, Operation]] = []
        self._body: bytes | None = None

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(OPENAPI_PATH, self.openapi)
        self._found = _described(router.routes())

    async def openapi(self, request: web.Request) -> web.Response:
        if self._body is None:
            document = _document(self._found, cloud=self._cloud, api_key=self._api_key)
            self._body = json.dumps(document).encode()
        return web.Response(body=self._body, content_type=_JSON)
